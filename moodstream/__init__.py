"""moodstream: multimodal sentiment and emotion over a Kafka stream.

This package is the ground every other one stands on: settings, wire schemas, labels, Kafka client configuration,
the plain types passed between streams and serving, and time. It imports no other package of ours.
"""

__version__ = "0.1.0"
