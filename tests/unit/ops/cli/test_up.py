"""`moodstream up` prints where to find everything once it is ready."""

from __future__ import annotations

from moodstream.config import Settings
from ops.cli.up import ready_urls


def test_ready_urls_name_dashboard_api_and_metrics():
    s = Settings(_env_file=None, serve_port=8123, dashboard_port=8600, worker_web_port=6077, kafka_brokers=None)
    urls = dict(ready_urls(s, {"MOODSTREAM_KAFKA_BROKERS": "127.0.0.1:9092",
                               "MOODSTREAM_SERVE_URL": "http://127.0.0.1:8123"}, dashboard=True))
    assert urls["dashboard"] == "http://127.0.0.1:8600"
    assert urls["API"].startswith("http://127.0.0.1:8123/classify")
    assert urls["API metrics"] == "http://127.0.0.1:8123/metrics"
    assert urls["worker metrics"] == "http://127.0.0.1:6077/metrics"
    assert urls["broker"] == "127.0.0.1:9092"
    off = dict(ready_urls(Settings(_env_file=None, worker_web_port=0, serve_url="http://ray-head:8000/"), {},
                          dashboard=False))
    assert "dashboard" not in off and "worker metrics" not in off
    assert off["API metrics"] == "http://ray-head:8000/metrics"
