"""Evaluation: metrics and per-dataset evaluation of the models."""
