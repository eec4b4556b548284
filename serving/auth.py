"""Who may call the classify routes: a bearer token (``MOODSTREAM_API_TOKEN``) and the loopback rule.

* A token set: every classify route needs ``Authorization: Bearer <token>``, whatever the bind address.
* No token: only loopback clients may classify, and the API refuses to bind a non-loopback address
  (``check_bind``), so an API reachable from the network is never open by accident.

Tokens are compared in constant time (``hmac.compare_digest`` of their SHA-256 digests, so not even the length
leaks). ``/healthz``, ``/metrics`` and the OpenAPI pages stay open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from pydantic import SecretStr

TOKEN_SETTING = "MOODSTREAM_API_TOKEN"
PROTECTED_PREFIX = "/classify"


class InsecureBindError(RuntimeError):
    """The API would listen on a non-loopback address with no token configured."""


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address; ``0.0.0.0``/``::`` are not."""
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def token_value(token: SecretStr | str | None) -> str | None:
    """The token as a plain string, ``None`` when unset or blank."""
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    return value if value and value.strip() else None


def check_bind(host: str, token: SecretStr | str | None) -> None:
    """Refuse (``InsecureBindError``) to serve the API on a non-loopback ``host`` without a token."""
    if not is_loopback(host) and token_value(token) is None:
        raise InsecureBindError(
            f"refusing to serve the classify API on {host!r} without a token: set {TOKEN_SETTING} (clients then send "
            f"'Authorization: Bearer <token>'), or bind 127.0.0.1 (MOODSTREAM_SERVE_HOST)")


def is_protected(path: str) -> bool:
    """Whether a route path (without the app's route prefix) is a classify route."""
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


@dataclass(frozen=True)
class Denied:
    """Why a request is refused: a 401 reason and the ``WWW-Authenticate`` challenge."""

    reason: str
    challenge: str


class BearerAuth:
    """Checks the ``Authorization`` header of a classify request (``token`` unset: loopback clients only)."""

    def __init__(self, token: SecretStr | str | None) -> None:
        value = token_value(token)
        self._digest = _digest(value) if value is not None else None

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def check(self, authorization: str | None, client_host: str | None) -> Denied | None:
        """``None`` when the request may go on, else why not."""
        if self._digest is None:
            if is_loopback(client_host):
                return None
            return Denied(f"this API serves clients outside loopback only with a token; set {TOKEN_SETTING}",
                          'Bearer realm="moodstream"')
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Denied("missing bearer token: send 'Authorization: Bearer <token>'", 'Bearer realm="moodstream"')
        if not hmac.compare_digest(_digest(given.strip()), self._digest):
            return Denied("invalid bearer token", 'Bearer realm="moodstream", error="invalid_token"')
        return None
