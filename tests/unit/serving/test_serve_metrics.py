"""The ingress's Prometheus metrics."""

from __future__ import annotations

from serving.serve_metrics import BatchMeta, ServeMetrics


def test_render_and_model_observations() -> None:
    m = ServeMetrics()
    m.observe_model("text", 0.02, BatchMeta("text", 12, 0.015))
    m.observe_model("text", 0.03, None)  # a later request of the same batch: latency only
    m.request_posts.observe(32)
    text = m.render().decode()
    assert 'moodstream_model_call_seconds_count{model="text"} 2.0' in text
    assert 'moodstream_model_batch_size_count{model="text"} 1.0' in text
    assert 'moodstream_model_batch_size_sum{model="text"} 12.0' in text
    assert 'moodstream_model_loaded{model="vision"} 0.0' in text
    assert "moodstream_request_posts_count 1.0" in text
