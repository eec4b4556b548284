"""moodstream: multimodal sentiment and emotion over a Kafka stream."""

__version__ = "0.1.0"
