"""Helpers shared by the test tiers: stream fixtures, a worker process, a TCP proxy, stand-in classifiers,
record factories, the dashboard seed and the reliability harness. ``tests/`` is on ``pythonpath`` (pyproject).
"""
