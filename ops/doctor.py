"""Health checks of every component, one line each: broker, database, cache, Ray, model pack."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from moodstream.config import Settings, mask_url

TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    """The state of one component: ``ok`` or not, with a one-line ``detail``; ``warning`` when it works but a person
    should know something about it."""

    component: str
    ok: bool
    detail: str
    warning: str | None = None


EMBEDDED_BROKER_WARNING = (
    "this is the embedded Tansu broker (one machine, in memory: a restart loses every message). librdkafka "
    "consumers (confluent-kafka) need max.poll.interval.ms=6000 and session.timeout.ms=6000 or a group join can "
    "wait up to 5 min; Debian's kcat cannot talk to it. See README 'Kafka clients'.")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    first = lines[0] if lines else ""
    name = type(e).__name__
    return first if first.startswith(name) else f"{name}: {first}".rstrip(": ")


def check_broker(s: Settings) -> Check:
    """Kafka reachable and our topics present (or the bundled Tansu binary available when unset)."""
    if not s.kafka_brokers:
        from ops.broker import BrokerError, tansu_path

        try:
            return Check("broker", True, f"embedded Tansu will be started ({tansu_path()})",
                         EMBEDDED_BROKER_WARNING)
        except BrokerError as e:
            return Check("broker", False, str(e))

    async def probe() -> tuple[list[str], str]:
        from aiokafka.admin import AIOKafkaAdminClient

        from moodstream.kafka import aiokafka_config

        admin = AIOKafkaAdminClient(request_timeout_ms=int(TIMEOUT_S * 1000), **aiokafka_config(s))
        await asyncio.wait_for(admin.start(), TIMEOUT_S)
        try:
            topics = list(await asyncio.wait_for(admin.list_topics(), TIMEOUT_S))
            cluster = await asyncio.wait_for(admin.describe_cluster(), TIMEOUT_S)
            return topics, str(cluster.get("cluster_id") or "")
        finally:
            await admin.close()

    try:
        topics, cluster_id = asyncio.run(probe())
    except Exception as e:  # any client failure is a "down" verdict
        return Check("broker", False, f"cannot reach Kafka at {s.kafka_brokers}: {_first_line(e)}")
    from ops.broker import TANSU_CLUSTER_PREFIX

    warning = EMBEDDED_BROKER_WARNING if cluster_id.lower().startswith(TANSU_CLUSTER_PREFIX) else None
    missing = [t for t in s.topics.values() if t not in topics]
    if missing:
        return Check("broker", True, f"{s.kafka_brokers} up; topics not created yet: {', '.join(missing)}", warning)
    return Check("broker", True, f"{s.kafka_brokers} up; all {len(s.topics)} topics present", warning)


def check_database(s: Settings) -> Check:
    """Connect with storage's own engine and report the schema revision against the code's head."""
    from sqlalchemy.engine import make_url

    from storage.engine import make_engine, ping
    from storage.migrate import current_revision, head_revision

    url = s.database_url
    shown = mask_url(url)
    if url.startswith("sqlite"):
        db = make_url(url).database
        if db and db != ":memory:" and not Path(db).exists():
            parent = Path(db).resolve().parent
            if not parent.is_dir():
                return Check("database", False, f"{shown}: directory {parent} does not exist")
            return Check("database", True, f"{shown}: file will be created on first start")
    try:
        engine = make_engine(url, settings=s)
        try:
            ping(engine)
            rev = current_revision(engine=engine)
        finally:
            engine.dispose()
    except Exception as e:
        return Check("database", False, f"cannot connect to {shown}: {_first_line(e)}")
    head = head_revision()
    if not rev:
        state = "reachable; schema not created yet (created on first start)"
    elif rev == head:
        state = f"schema at revision {rev} (current)"
    else:
        state = f"schema at revision {rev}; this code migrates it to {head} on start"
    return Check("database", True, f"{shown}: {state}")


def check_redis(s: Settings) -> Check:
    if not s.redis_url:
        return Check("cache", True, "in-process LRU cache (MOODSTREAM_REDIS_URL unset)")
    import redis

    try:
        r = redis.Redis.from_url(s.redis_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        r.ping()
        r.close()
    except Exception as e:
        return Check("cache", False, f"cannot reach Redis at {mask_url(s.redis_url)}: {_first_line(e)}")
    return Check("cache", True, f"Redis at {mask_url(s.redis_url)} answers PING")


def check_ray(s: Settings) -> Check:
    if importlib.util.find_spec("ray") is None:
        return Check("ray", False, "the 'ray' package is not installed")
    if not s.ray_address:
        if s.serve_url:
            return _check_http(s.serve_url.rstrip("/") + "/healthz", "ray")
        return Check("ray", True, "a local Ray will be started (MOODSTREAM_RAY_ADDRESS unset)")
    addr = s.ray_address
    if addr == "auto":
        return Check("ray", True, "will join the Ray cluster of this node (address 'auto')")
    host_port = addr.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 10001)), timeout=TIMEOUT_S):
            pass
    except (OSError, ValueError) as e:
        return Check("ray", False, f"cannot reach Ray at {addr}: {_first_line(e)}")
    return Check("ray", True, f"Ray at {addr} accepts connections")


def _check_http(url: str, component: str) -> Check:
    import httpx

    try:
        r = httpx.get(url, timeout=TIMEOUT_S)
    except Exception as e:
        return Check(component, False, f"cannot reach {url}: {_first_line(e)}")
    return Check(component, r.status_code == 200, f"{url} answered {r.status_code}")


def check_models(s: Settings) -> Check:
    """The model pack is present and complete (no weights are loaded)."""
    try:
        from serving.pack import load_pack
    except ImportError:
        return Check("models", False, "the model pack loader (serving.pack) is not available yet")
    try:
        pack = load_pack(Path(s.model_dir) if s.model_dir else None)
    except Exception as e:
        return Check("models", False, f"model pack unusable: {_first_line(e)}")
    return Check("models", True, f"pack {pack.version} at {pack.dir}")


CHECKS = (check_broker, check_database, check_redis, check_ray, check_models)


def run_checks(s: Settings) -> list[Check]:
    """Every check, in order; a check that crashes is reported as a failure, not raised."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    out = []
    for fn in CHECKS:
        try:
            out.append(fn(s))
        except Exception as e:
            out.append(Check(fn.__name__.removeprefix("check_"), False, f"check failed: {_first_line(e)}"))
    return out
