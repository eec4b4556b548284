"""End-to-end benchmarks of the stream pipeline (``moodstream bench e2e``)."""
