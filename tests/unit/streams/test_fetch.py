from __future__ import annotations

import asyncio
import http.server
import ipaddress
import threading

import pytest

from moodstream.config import Settings
from streams.fetch import FetchError, ImageFetcher, ip_refused


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "224.0.0.1", "::1",
                                "fe80::1", "0.0.0.0", "::ffff:127.0.0.1", "100.64.0.1"])
def test_internal_addresses_refused(ip):
    assert ip_refused(ipaddress.ip_address(ip))


def test_public_address_allowed():
    assert ip_refused(ipaddress.ip_address("93.184.216.34")) is None


@pytest.fixture
def server():
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/big":
                body = b"x" * 5000
            elif self.path.startswith("/hop"):
                n = int(self.path[4:] or 0)
                self.send_response(302)
                self.send_header("Location", f"/hop{n + 1}" if n < 5 else "/ok")
                self.end_headers()
                return
            else:
                body = b"image-bytes"
            self.send_response(200)
            self.end_headers()  # no content-length for /big: the streaming limit must catch it
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def fetch(url, **kw):
    s = Settings(_env_file=None, image_max_bytes=1000, **kw)

    async def go():
        f = ImageFetcher(s)
        try:
            return await f.fetch(url)
        finally:
            await f.close()

    return asyncio.run(go())


def test_loopback_refused_unless_allowed(server):
    with pytest.raises(FetchError, match="loopback"):
        fetch(f"{server}/ok")
    assert fetch(f"{server}/ok", image_allow_private_urls=True) == b"image-bytes"


def test_size_limit_and_redirect_limit(server):
    with pytest.raises(FetchError, match="larger than 1000"):
        fetch(f"{server}/big", image_allow_private_urls=True)
    assert fetch(f"{server}/hop3", image_allow_private_urls=True) == b"image-bytes"
    with pytest.raises(FetchError, match="redirected more than"):
        fetch(f"{server}/hop0", image_allow_private_urls=True)


def test_schemes_and_file_urls(tmp_path):
    p = tmp_path / "a.jpg"
    p.write_bytes(b"jpeg")
    with pytest.raises(FetchError, match="not allowed"):
        fetch(f"file://{p}")
    assert fetch(f"file://{p}", image_allow_file_urls=True) == b"jpeg"
    with pytest.raises(FetchError, match="scheme"):
        fetch("gopher://example.com/x")
