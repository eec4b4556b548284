"""Fetch ``image.url`` safely: http(s) (and ``file:`` when allowed), bounded time and bytes, no internal addresses.

The host is resolved once, every address is vetted, and the connection goes to the vetted address (Host header
and TLS SNI keep the name), so DNS rebinding cannot slip past the check. Redirects are followed by hand, at most
``MAX_REDIRECTS``, and each hop is vetted again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from moodstream.config import Settings

MAX_REDIRECTS = 3
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """A per-post fetch failure; ``reason`` is one line for the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ip_refused(ip: IPAddress) -> str | None:
    """Why an address may not be fetched from (None when it is a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for attr in ("is_loopback", "is_link_local", "is_private", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(ip, attr):
            return attr.removeprefix("is_").replace("_", "-")
    if not ip.is_global:
        return "non-global"
    return None


class ImageFetcher:
    """Downloads images for posts; one shared HTTP client."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.max_bytes = settings.image_max_bytes
        self.timeout_s = settings.image_fetch_timeout_s
        self.allow_file = settings.image_allow_file_urls
        self.allow_private = settings.image_allow_private_urls
        self._client = client or httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=self.timeout_s,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )

    async def fetch(self, url: str) -> bytes:
        """The bytes behind ``url``; raises ``FetchError`` with a reason."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url)
        except TimeoutError:
            raise FetchError(f"image fetch timed out after {self.timeout_s:g}s") from None
        except httpx.HTTPError as e:
            raise FetchError(f"image fetch failed: {type(e).__name__}: {e}"[:300]) from None

    async def _fetch(self, url: str) -> bytes:
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme == "file":
                return self._read_file(parts.path)
            if scheme not in ("http", "https"):
                raise FetchError(f"image URL scheme {scheme or '(none)'!r} is not allowed")
            if not parts.hostname:
                raise FetchError("image URL has no host")
            ip = await self._resolve(parts.hostname, parts.port or (443 if scheme == "https" else 80))
            host = f"[{ip}]" if ip.version == 6 else str(ip)
            netloc = f"{host}:{parts.port}" if parts.port else host
            target = parts._replace(netloc=netloc).geturl()
            headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"}
            ext = {"sni_hostname": parts.hostname} if scheme == "https" else {}
            async with self._client.stream("GET", target, headers=headers, extensions=ext) as r:
                if r.is_redirect:
                    loc = r.headers.get("location")
                    if not loc:
                        raise FetchError(f"image URL redirect ({r.status_code}) without a location")
                    url = urljoin(url, loc)
                    continue
                if r.status_code != 200:
                    raise FetchError(f"image URL returned HTTP {r.status_code}")
                size = r.headers.get("content-length")
                if size and size.isdigit() and int(size) > self.max_bytes:
                    raise FetchError(f"image is larger than {self.max_bytes} bytes")
                buf = bytearray()
                async for chunk in r.aiter_bytes():
                    buf += chunk
                    if len(buf) > self.max_bytes:
                        raise FetchError(f"image is larger than {self.max_bytes} bytes")
                if not buf:
                    raise FetchError("image URL returned no bytes")
                return bytes(buf)
        raise FetchError(f"image URL redirected more than {MAX_REDIRECTS} times")

    async def _resolve(self, hostname: str, port: int) -> IPAddress:
        try:
            ips = [ipaddress.ip_address(hostname)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
            except socket.gaierror:
                raise FetchError(f"image host {hostname!r} does not resolve") from None
            ips = list(dict.fromkeys(ipaddress.ip_address(i[4][0].split("%", 1)[0]) for i in infos))
        if not ips:
            raise FetchError(f"image host {hostname!r} does not resolve")
        if not self.allow_private:
            for ip in ips:
                why = ip_refused(ip)
                if why:
                    raise FetchError(f"image host {hostname!r} resolves to a {why} address ({ip}); refused")
        return ips[0]

    def _read_file(self, path: str) -> bytes:
        if not self.allow_file:
            raise FetchError("file: image URLs are not allowed")
        p = Path(unquote(path))
        try:
            if p.stat().st_size > self.max_bytes:
                raise FetchError(f"image is larger than {self.max_bytes} bytes")
            with p.open("rb") as f:
                data = f.read(self.max_bytes + 1)
        except OSError as e:
            raise FetchError(f"image file cannot be read: {e.strerror or e}") from None
        if len(data) > self.max_bytes:
            raise FetchError(f"image is larger than {self.max_bytes} bytes")
        return data

    async def close(self) -> None:
        await self._client.aclose()
