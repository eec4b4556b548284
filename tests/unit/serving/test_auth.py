"""``serving.auth``: loopback addresses, the public-bind refusal, the bearer check."""

from __future__ import annotations

import hmac

import pytest
from pydantic import SecretStr

from serving.auth import BearerAuth, InsecureBindError, check_bind, is_loopback, is_protected


@pytest.mark.parametrize("host,loop", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("10.0.0.1", False), ("example.com", False),
    ("", False), (None, False), ("testclient", False),
])
def test_is_loopback(host: str | None, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_check_bind() -> None:
    check_bind("127.0.0.1", None)
    check_bind("localhost", "")
    check_bind("0.0.0.0", SecretStr("tok"))
    for host in ("0.0.0.0", "::", "10.1.2.3"):
        for token in (None, "", "   ", SecretStr("")):
            with pytest.raises(InsecureBindError, match="MOODSTREAM_API_TOKEN"):
                check_bind(host, token)


def test_protected_routes() -> None:
    assert is_protected("/classify") and is_protected("/classify/items") and is_protected("/classify/anything")
    for path in ("/healthz", "/metrics", "/docs", "/openapi.json", "/classifyx", "/"):
        assert not is_protected(path), path


def test_bearer_token_missing_wrong_right() -> None:
    auth = BearerAuth(SecretStr("s3cret"))
    assert auth.enabled
    for header in (None, "", "Bearer", "Basic s3cret", "s3cret", "Token s3cret"):
        denied = auth.check(header, "127.0.0.1")
        assert denied is not None and "missing bearer token" in denied.reason, header
    for header in ("Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "Bearer s3cret s3cret"):
        denied = auth.check(header, "127.0.0.1")
        assert denied is not None and denied.reason == "invalid bearer token", header
        assert 'error="invalid_token"' in denied.challenge
    for header in ("Bearer s3cret", "bearer s3cret", "BEARER  s3cret "):
        assert auth.check(header, "203.0.113.9") is None, header  # a token set: required from anywhere, enough


def test_no_token_means_loopback_clients_only() -> None:
    auth = BearerAuth(None)
    assert not auth.enabled
    assert auth.check(None, "127.0.0.1") is None and auth.check(None, "::1") is None
    for client in ("203.0.113.9", "10.0.0.2", None, "testclient"):
        denied = auth.check("Bearer whatever", client)
        assert denied is not None and "MOODSTREAM_API_TOKEN" in denied.reason, client


def test_token_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check goes through ``hmac.compare_digest`` (constant time), on fixed-length digests."""
    seen: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth = BearerAuth("short")
    assert auth.check("Bearer a-much-longer-guess", None) is not None and auth.check("Bearer short", None) is None
    assert seen == [(32, 32), (32, 32)]
