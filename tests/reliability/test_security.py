"""Security basics (issue 9): no internal fetches (also after redirects and DNS tricks), secrets out of logs, TLS/SASL
settings reaching the clients.

Already covered elsewhere and not repeated here (see docs/RELIABILITY.md): the dashboard password gate, injection
strings as bound parameters and script/Markdown captions shown as text (tests/integration/dashboard/test_pages.py,
tests/unit/dashboard/test_helpers.py); 413 for oversized classify bodies (tests/unit/serving/test_serve_http_api.py,
tests/integration/serving/test_serve_http.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from typing import Any
from urllib.parse import quote

import pytest

from moodstream.config import Settings
from testkit.harness import Feed, count, invalid_messages, settle
from testkit.stream_helpers import wait_for

FAKE_PUBLIC = ipaddress.ip_address("127.0.0.2")  # the hostile server's address, treated as public by a FAKE check


@pytest.fixture
def fake_public_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """FAKE: ``ip_refused`` says 127.0.0.2 is a public address (it is where the test's "internet" server listens),
    so a first hop can reach it; every other address goes through the real check."""
    from streams import fetch

    real = fetch.ip_refused
    monkeypatch.setattr(fetch, "ip_refused", lambda ip: None if ip == FAKE_PUBLIC else real(ip))


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """FAKE resolver: names in the returned dict resolve to their addresses (each lookup pops the first list entry
    when there is more than one, to model DNS rebinding); everything else goes to the real resolver."""
    table: dict[str, list[str]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *a: Any, **kw: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            lookups.append(name)
            addrs = table[name]
            ip = addrs.pop(0) if len(addrs) > 1 else addrs[0]
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [(fam, socket.SOCK_STREAM, 6, "", (ip, int(port or 80)))]
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    table["__lookups__"] = lookups  # type: ignore[assignment]
    return table


def fetch(url: str, **kw: Any) -> bytes | str:
    """The bytes behind ``url`` or the ``FetchError`` reason (production defaults: private addresses refused)."""
    from streams.fetch import FetchError, ImageFetcher

    async def go() -> bytes | str:
        f = ImageFetcher(Settings(_env_file=None, image_fetch_timeout_s=3, image_max_bytes=100_000, **kw))
        try:
            return await f.fetch(url)
        except FetchError as e:
            return e.reason
        finally:
            await f.close()

    return asyncio.run(go())


@pytest.mark.hostile_host("127.0.0.2")
def test_redirects_to_internal_addresses_refused(hostile_server: str, fake_public_server: None) -> None:
    port = hostile_server.rsplit(":", 1)[1]
    assert fetch(f"{hostile_server}/img/jpeg") == fetch_ok_body(), "control: the fake-public server is reachable"
    for target in (f"http://127.0.0.1:{port}/img/jpeg", "http://169.254.169.254/latest/meta-data/",
                   f"http://localhost:{port}/img/jpeg", f"http://[::ffff:127.0.0.1]:{port}/img/jpeg",
                   f"http://2130706433:{port}/img/jpeg", "http://10.0.0.1/x", f"http://[::1]:{port}/img/jpeg"):
        reason = fetch(f"{hostile_server}/redirect?to={quote(target, safe='')}")
        assert isinstance(reason, str) and "refused" in reason, (target, reason)
    # a redirect chain that comes back to the (fake-public) server is followed; one via an internal hop is not
    inner = f"{hostile_server}/redirect?to={quote(f'http://127.0.0.1:{port}/img/jpeg', safe='')}"
    reason = fetch(f"{hostile_server}/redirect?to={quote(inner, safe='')}")
    assert isinstance(reason, str) and "loopback" in reason


def fetch_ok_body() -> bytes:
    from testkit import hostile

    return hostile.images()["jpeg"]


@pytest.mark.hostile_host("127.0.0.2")
def test_dns_tricks_refused(hostile_server: str, fake_public_server: None, fake_dns: dict[str, list[str]]) -> None:
    port = hostile_server.rsplit(":", 1)[1]
    fake_dns.update({"evil.example": ["127.0.0.1"], "metadata.example": ["169.254.169.254"],
                     "v6.example": ["::1"], "private.example": ["10.1.2.3"],
                     "rebind.example": ["127.0.0.2", "127.0.0.1", "127.0.0.1"]})
    for name in ("evil.example", "metadata.example", "v6.example", "private.example", "localhost"):
        reason = fetch(f"http://{name}:{port}/img/jpeg")
        assert isinstance(reason, str) and "refused" in reason, (name, reason)
    # DNS rebinding: the first answer is "public", later ones loopback. The fetcher resolves once per hop and
    # connects to the vetted address, so the request lands on 127.0.0.2 (the Host header keeps the name).
    lookups = fake_dns["__lookups__"]
    lookups.clear()
    assert fetch(f"http://rebind.example:{port}/img/jpeg") == fetch_ok_body()
    assert lookups == ["rebind.example"]
    # a redirect to a name that resolves to loopback
    reason = fetch(f"{hostile_server}/redirect?to={quote(f'http://evil.example:{port}/img/jpeg', safe='')}")
    assert isinstance(reason, str) and "loopback" in reason


def test_slow_and_endless_bodies_bounded(hostile_server: str) -> None:
    t0 = time.monotonic()
    for path, why in (("/slow", "timed out"), ("/drip", "timed out"), ("/endless", "larger than")):
        reason = fetch(f"{hostile_server}{path}", image_allow_private_urls=True)
        assert isinstance(reason, str) and why in reason, (path, reason)
    assert time.monotonic() - t0 < 15


# ------------------------------------------------------------------------------------------ secrets

SECRETS = {"kafka": "kafka-s3cret-Zq81", "db": "db-s3cret-Xw42", "dash": "dash-s3cret-Py93"}


@pytest.mark.integration
def test_secrets_never_in_worker_logs(stream_env, worker_factory, proxy_factory, hostile_server, db, pg_url,
                                      tmp_path) -> None:
    """A worker run with known secrets, through a DB outage and bad input (error paths log URLs): grep its log."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    proxy = proxy_factory(url.host or "127.0.0.1", url.port or 5432)  # PG trusts local users: password ignored
    env = {**stream_env,
           "MOODSTREAM_DATABASE_URL": url.set(host="127.0.0.1", port=proxy.port, password=SECRETS["db"])
           .render_as_string(hide_password=False),
           "MOODSTREAM_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",  # so the SASL password is configured but unused
           "MOODSTREAM_KAFKA_SASL_USERNAME": "moodstream", "MOODSTREAM_KAFKA_SASL_PASSWORD": SECRETS["kafka"],
           "MOODSTREAM_DASHBOARD_PASSWORD": SECRETS["dash"], "MOODSTREAM_LOG_LEVEL": "DEBUG"}
    worker = worker_factory(env)
    feed = Feed(env, rate=50, seed=3, invalid=invalid_messages(hostile_server)).start()
    wait_for(lambda: count(db) > 10, 120, lambda: f"first predictions\n{worker.tail()}", worker=worker)
    proxy.stop()  # "database unavailable" paths log the URL
    time.sleep(4)
    proxy.start()
    feed.stop()
    settle(db, env, len(feed.sent_ids), len(feed.sent_invalid), 120, [worker])
    worker.stop()
    log = worker.log.read_text(errors="replace")
    assert "unavailable" in log, "the outage should have been logged"
    assert ":***@127.0.0.1" in log, "the database URL is logged, masked"
    for name, secret in SECRETS.items():
        assert secret not in log, f"the {name} secret is in the worker log"
    assert SECRETS["db"] not in str(Settings(_env_file=None, database_url=env["MOODSTREAM_DATABASE_URL"]).safe_dump())


# ------------------------------------------------------------------------------------------ TLS / SASL settings


def _settings(**kw: Any) -> Settings:
    return Settings(_env_file=None, kafka_brokers="k1:9093,k2:9093", **kw)


@pytest.fixture(scope="module")
def ca_file() -> str:
    import certifi

    return certifi.where()


def test_kafka_ssl_reaches_aiokafka_and_faust(ca_file: str) -> None:
    import faust

    from moodstream.kafka import aiokafka_config
    from streams.app import app_config

    s = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file)
    kc = aiokafka_config(s)
    assert kc["security_protocol"] == "SSL" and isinstance(kc["ssl_context"], ssl.SSLContext)
    assert kc["ssl_context"].verify_mode == ssl.CERT_REQUIRED and kc["ssl_context"].check_hostname
    assert "sasl_mechanism" not in kc
    creds = app_config(s)["broker_credentials"]
    assert isinstance(creds, faust.SSLCredentials) and isinstance(creds.context, ssl.SSLContext)


def test_kafka_sasl_ssl_reaches_aiokafka_and_faust(ca_file: str) -> None:
    import faust

    from moodstream.kafka import aiokafka_config
    from streams.app import app_config

    s = _settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                  kafka_sasl_username="svc", kafka_sasl_password="pw-1", kafka_ssl_cafile=ca_file)
    kc = aiokafka_config(s)
    assert (kc["security_protocol"], kc["sasl_mechanism"], kc["sasl_plain_username"], kc["sasl_plain_password"]) == \
        ("SASL_SSL", "SCRAM-SHA-512", "svc", "pw-1")
    assert isinstance(kc["ssl_context"], ssl.SSLContext)
    creds = app_config(s)["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials) and creds.ssl_context is not None
    assert (creds.username, creds.password, creds.mechanism.value) == ("svc", "pw-1", "SCRAM-SHA-512")
    assert "pw-1" not in repr(s) and "pw-1" not in str(s.safe_dump())


def _pg_connect_params(url: str, **kw: Any) -> dict[str, Any]:
    """What psycopg would be called with (captured by a ``do_connect`` hook; nothing is contacted)."""
    from sqlalchemy import event

    from storage.engine import make_engine

    engine = make_engine(url, settings=Settings(_env_file=None, **kw))
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    @event.listens_for(engine, "do_connect")
    def capture(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise Stop

    with pytest.raises(Stop):
        engine.connect()
    engine.dispose()
    return seen


def test_postgres_tls_settings_reach_psycopg(tmp_path) -> None:
    root = tmp_path / "root.crt"
    root.write_text("not read: nothing connects\n")
    p = _pg_connect_params("postgresql://u:pw@db.example:5432/m", database_sslmode="verify-full",
                           database_sslrootcert=root)
    assert p["sslmode"] == "verify-full" and p["sslrootcert"] == str(root) and p["host"] == "db.example"
    # the URL's own query wins over the settings
    p = _pg_connect_params("postgresql://u@db.example/m?sslmode=require", database_sslmode="disable")
    assert p["sslmode"] == "require"
    assert "sslmode" not in _pg_connect_params("postgresql://u@db.example/m")
