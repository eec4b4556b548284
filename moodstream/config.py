"""All settings, in one pydantic-settings model (env prefix ``MOODSTREAM_``, also read from ``.env``).

Unset means the embedded default: a bundled Tansu broker, a SQLite file, an in-process LRU cache,
a local Ray, and the model pack committed in ``serving/pack``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

FusionStrategy = Literal["late", "stacked", "concat", "attention"]


def mask_url(url: str | None) -> str | None:
    """Hide the password in a URL (``scheme://user:***@host``) so it can be logged."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


# Defaults of the per-prediction flags (issue #14; serving.flags): the uncertain threshold was chosen on MVSA val
# (flagged posts wrong ≥ 2× as often as the rest), see serving/pack/MODEL_CARD.md.
DEFAULT_UNCERTAIN_BELOW = 0.66
DEFAULT_CONFLICT_MIN_CONFIDENCE = 0.7


class Settings(BaseSettings):
    """Every knob of moodstream. Field name ``foo_bar`` is read from ``MOODSTREAM_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix="MOODSTREAM_", env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- Kafka -----------------------------------------------------------------------------------
    kafka_brokers: str | None = Field(None, description="host:port,...; unset starts the bundled Tansu")
    kafka_partitions: int = Field(4, ge=1, description="partitions of every topic we create")
    topic_posts: str = Field("posts", description="input topic (Post v1 JSON, key = post id)")
    topic_predictions: str = Field("predictions", description="output topic (Prediction JSON, key = post id)")
    topic_trends: str = Field("trends", description="closed trend windows")
    topic_alerts: str = Field("alerts", description="sentiment-shift alerts")
    topic_dlq: str = Field("posts.dlq", description="rejected input with its reason and original bytes")
    consumer_group: str = Field("moodstream", description="Kafka consumer group of the workers")
    broker_rebalance_timeout_s: float = Field(3.0, gt=0, description="Tansu holds a join this long")
    broker_session_timeout_s: float = Field(10.0, gt=0, description="consumer session timeout")
    broker_heartbeat_interval_s: float = Field(1.0, gt=0, description="consumer heartbeat interval")
    broker_fetch_max_wait_ms: int = Field(
        100, ge=1, description="longest a fetch waits for data (Tansu answers an empty fetch only after it)"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for Kafka TLS")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate for Kafka mTLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="client key for Kafka mTLS")

    # --- Database ---------------------------------------------------------------------------------
    database_url: str = Field("sqlite:///./moodstream.db", description="SQLAlchemy URL")
    database_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        None, description="PostgreSQL sslmode passed to the driver"
    )
    database_sslrootcert: Path | None = Field(None, description="PostgreSQL CA certificate")
    database_readonly_url: str | None = Field(None, description="URL of a read-only role, for the dashboard")

    # --- Cache ------------------------------------------------------------------------------------
    redis_url: str | None = Field(None, description="redis://host:6379/0; unset uses an in-process LRU")
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="how long a cached prediction lives in Redis")
    cache_prefix: str = Field("moodstream:pred:", description="key prefix of cached predictions in Redis")
    cache_max_items: int = Field(100_000, ge=1, description="size of the in-process LRU")

    # --- Ray Serve --------------------------------------------------------------------------------
    ray_address: str | None = Field(None, description="ray://head:10001 or auto; unset starts a local Ray")
    serve_url: str | None = Field(None, description="http://host:8000 to call the Classifier over HTTP")
    serve_host: str = Field("127.0.0.1", description="address the Serve HTTP proxy binds")
    serve_port: int = Field(8000, description="port of POST /classify, /healthz, /metrics")
    serve_app_name: str = Field("moodstream", description="Serve application name (the worker's handle looks it up)")
    serve_max_batch_size: int = Field(32, ge=1, description="@serve.batch max_batch_size of each model deployment")
    serve_batch_wait_s: float = Field(0.01, ge=0, description="@serve.batch batch_wait_timeout_s")
    serve_replicas: int = Field(1, ge=1, description="replicas per model deployment (no autoscaling)")
    serve_autoscale: bool = Field(False, description="use autoscaling instead of fixed replicas")
    serve_min_replicas: int = Field(1, ge=0, description="autoscaling lower bound")
    serve_max_replicas: int = Field(4, ge=1, description="autoscaling upper bound")
    serve_target_ongoing_requests: float = Field(2.0, gt=0, description="autoscaling target per replica")
    serve_num_cpus: float = Field(0.5, ge=0, description="CPUs per model replica")
    serve_num_gpus: float = Field(0.0, ge=0, description="GPUs per model replica (fractions allowed)")
    serve_model_resource: str | None = Field(
        None, description="custom Ray resource each model replica needs 0.01 of (places them on nodes that have it)")
    serve_max_request_bytes: int = Field(
        25 * 1024 * 1024, ge=1024, description="HTTP body limit; larger bodies get 413"
    )
    api_token: SecretStr | None = Field(
        None, description="bearer token every classify route requires when set; needed to bind the API to a "
                          "non-loopback address (secret)"
    )
    api_rate_per_s: float = Field(
        50.0, ge=0, description="classify requests per second allowed per client address (token bucket); 0 = no limit"
    )
    api_rate_burst: int = Field(100, ge=1, description="classify requests a client may send at once (bucket size)")
    serve_request_timeout_s: float = Field(60.0, gt=0, description="worker -> Serve call timeout")
    serve_retries: int = Field(3, ge=0, description="worker retries of a failed Serve call")
    serve_outage_max_s: float = Field(
        600.0, ge=0, description="how long the worker waits for the classifier to come back before dead-lettering"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when present, else CPU")
    torch_threads: int | None = Field(None, ge=1, description="intra-op threads per model replica")

    # --- Models -----------------------------------------------------------------------------------
    model_dir: Path | None = Field(None, description="a model pack directory; unset uses the packaged one")
    text_model: str | None = Field(None, description="hub id or local dir of the text encoder")
    vision_model: str | None = Field(None, description="local .pth of a MobileNetV2 backbone")
    fusion_strategy: FusionStrategy | None = Field(None, description="unset uses the pack's best on val")
    face_model: str | None = Field(
        None, description="a face-expression setting of the pack's expression.json (e.g. mini_xception); unset uses "
                          "the pack's default",
    )
    face_gate: bool = Field(
        True, description="skip face detection on images the pack's face gate (face_gate.json) calls faceless; "
                          "false runs the detector on every image"
    )
    text_max_tokens: int = Field(128, ge=8, description="token limit of the text encoder")
    runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="inference runtime of the models: onnx (ONNX Runtime, graphs exported from the pack on "
                            "first load) or torch"
    )
    onnx_cache_dir: Path | None = Field(
        None, description="where exported ONNX graphs are kept (per pack version); unset: .cache/onnx in the checkout"
    )
    data_dir: Path | None = Field(
        None, validation_alias=AliasChoices("MOODSTREAM_DATA_DIR", "MOODSTREAM_DATA"),
        description="the labelled datasets (train, eval, bench); unset: ../shared/data from the working directory "
                    "or beside the checkout",
    )
    uncertain_below: float = Field(
        DEFAULT_UNCERTAIN_BELOW, ge=0, le=1,
        description="a prediction whose calibrated confidence is below this is flagged uncertain (chosen on val)",
    )
    conflict_min_confidence: float = Field(
        DEFAULT_CONFLICT_MIN_CONFIDENCE, ge=0, le=1,
        description="text and image each polar with at least this confidence, in opposite directions: conflict",
    )

    # --- Stream worker ----------------------------------------------------------------------------
    stream_batch_max: int = Field(64, ge=1, description="stream.take(max, ...)")
    stream_batch_within_s: float = Field(0.1, gt=0, description="stream.take(..., within=...)")
    worker_concurrency: int = Field(2, ge=1, description="batches in flight per worker, acknowledged in read order")
    worker_web_port: int = Field(6066, ge=0, description="worker web server (Prometheus /metrics); 0 = off")
    trend_window_s: int = Field(60, ge=1, description="tumbling window length of the trends")
    trend_grace_s: float = Field(10.0, ge=0, description="wait after a window ends before it counts as closed")
    alert_min_volume: int = Field(10, ge=1, description="posts a window needs before it can alert")
    alert_baseline_windows: int = Field(10, ge=1, description="trailing windows that make the baseline")
    alert_threshold: float = Field(0.4, gt=0, description="|mean score - baseline| that raises an alert")
    alert_webhook_url: str | None = Field(None, description="POST every alert here (at least once); unset = no webhook")
    alert_webhook_format: Literal["json", "slack"] = Field(
        "json", description="json (the alert as JSON) or slack (a Slack incoming-webhook message)"
    )
    alert_webhook_secret: SecretStr | None = Field(
        None, description="sent in the secret header with every POST (secret)"
    )
    alert_webhook_secret_header: str = Field("X-Moodstream-Secret", description="header that carries the secret")
    alert_webhook_timeout_s: float = Field(5.0, gt=0, description="time limit of one webhook POST")
    alert_webhook_max_attempts: int = Field(
        20, ge=1, description="attempts before a delivery is kept as failed (with its last error)"
    )
    alert_webhook_retry_max_s: float = Field(300.0, gt=0, description="cap of the exponential backoff between attempts")
    db_retry_max_s: float = Field(30.0, gt=0, description="cap of the DB retry backoff")

    # --- Input limits -----------------------------------------------------------------------------
    text_max_chars: int = Field(10_000, ge=1, description="longest caption accepted")
    image_max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="largest image accepted (inline or fetched)")
    image_max_pixels: int = Field(40_000_000, ge=1, description="decompression-bomb guard")
    image_fetch_timeout_s: float = Field(5.0, gt=0, description="time limit of an image URL fetch")
    image_allow_file_urls: bool = Field(False, description="accept file: image URLs")
    image_allow_private_urls: bool = Field(
        False, description="allow image URLs on loopback/private/link-local addresses"
    )

    # --- Dashboard --------------------------------------------------------------------------------
    dashboard_host: str = Field("127.0.0.1", description="address the dashboard binds")
    dashboard_port: int = Field(8501, description="dashboard port")
    dashboard_password: SecretStr | None = Field(None, description="when set, the dashboard asks for it first (secret)")
    dashboard_refresh_s: float = Field(5.0, gt=0, description="live-refresh interval")
    dashboard_cache_ttl_s: float = Field(5.0, ge=0, description="seconds a dashboard query result is reused")

    # --- Logging ----------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(False, description="structured JSON log lines")

    @field_validator("kafka_brokers", "redis_url", "ray_address", "serve_url", "database_readonly_url",
                     "alert_webhook_url", "api_token", "dashboard_password", "serve_model_resource",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @property
    def topics(self) -> dict[str, str]:
        """Every topic we own, by role."""
        return {
            "posts": self.topic_posts,
            "predictions": self.topic_predictions,
            "trends": self.topic_trends,
            "alerts": self.topic_alerts,
            "dlq": self.topic_dlq,
        }

    @property
    def datasets(self) -> Path:
        """The datasets folder: ``data_dir`` when set, else the first ``../shared/data`` found, else a clear error."""
        if self.data_dir is not None:
            return self.data_dir
        for candidate in (Path("../shared/data"), Path(__file__).resolve().parents[2] / "shared" / "data"):
            if candidate.is_dir():
                return candidate
        raise FileNotFoundError("datasets not found: set MOODSTREAM_DATA_DIR to the folder holding mvsa_single/, "
                                "tweeteval/, goemotions/ and fer2013/")

    def safe_dump(self) -> dict[str, object]:
        """Settings as a dict that is safe to log: secrets and URL passwords masked."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif isinstance(value, str) and name.endswith("_url"):
                out[name] = mask_url(value)
            else:
                out[name] = value
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from env and ``.env``)."""
    return Settings()
