#!/opt/venv/bin/python
"""Container health check for every moodstream role (installed in the image as ``moodstream-healthcheck``).

``moodstream-healthcheck [ROLE]`` probes the role's own endpoint and exits 0 when it answers 2xx, else 1:
serve → ``GET /healthz`` on ``serve_port``; dashboard → ``GET /_stcore/health`` on ``dashboard_port``;
worker → ``GET /metrics`` on ``worker_web_port``; ray (a KubeRay head or worker pod) → the local raylet's
health on Ray's dashboard agent. Ports come from ``moodstream.config.Settings``, the same settings the
process itself reads. Without ROLE, the role is the first known command on PID 1's command line
(``tini -- moodstream worker`` → worker). Roles without an endpoint (publish, one-shots) count as healthy.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

ROLES = ("serve", "dashboard", "worker", "ray")
RAY_AGENT_PORT = 52365  # Ray's dashboard agent (ray start --dashboard-agent-listen-port), on every Ray node
ONE_SHOTS = ("publish", "broker", "doctor", "classify", "train", "eval", "bench", "up")


def role_from_cmdline(argv: list[str]) -> str | None:
    """The moodstream command in a process's argv, if any."""
    for arg in argv:
        if arg in ROLES or arg in ONE_SHOTS:
            return arg
    return None


def pid1_argv() -> list[str]:
    raw = Path("/proc/1/cmdline").read_bytes()
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def probe_url(role: str, settings: object) -> str | None:
    """The URL that tells whether ``role`` is healthy, or None when the role has no endpoint."""
    port = {
        "serve": getattr(settings, "serve_port", None),
        "dashboard": getattr(settings, "dashboard_port", None),
        "worker": getattr(settings, "worker_web_port", None),
        "ray": RAY_AGENT_PORT,
    }.get(role)
    path = {
        "serve": "/healthz",
        "dashboard": "/_stcore/health",
        "worker": "/metrics",
        "ray": "/api/local_raylet_healthz",
    }.get(role)
    return None if port is None else f"http://127.0.0.1:{port}{path}"


def check(url: str, timeout: float = 4.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    role = args[0] if args else role_from_cmdline(pid1_argv())
    if role is None:
        print("healthcheck: no moodstream role found on PID 1's command line", file=sys.stderr)
        return 1
    if role not in ROLES and role not in ONE_SHOTS:
        print(f"healthcheck: unknown role {role!r}", file=sys.stderr)
        return 1
    from moodstream.config import Settings

    url = probe_url(role, Settings())
    if url is None:
        return 0
    ok = check(url)
    if not ok:
        print(f"healthcheck: {role} not healthy at {url}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
