"""Shared by the serving tests: a real uvicorn on a free loopback port with `sentitune serve`'s options."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx
import uvicorn

from sentitune.config import ServeConfig
from sentitune.serving.app import create_app
from sentitune.serving.server import uvicorn_options
from conftest import free_port

KEY = "test-key-0123456789"
OTHER_KEY = "other-key-9876543210"




def wait_healthy(url: str, timeout: float = 120.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(f"{url}/api/v1/health", timeout=5)
            if r.status_code == 200 or time.monotonic() > deadline:
                return r
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


@contextmanager
def live_server(config: ServeConfig | None = None, model=None, wait: bool = True, app=None):
    """``config`` (and ``model``) served, or a ready ``app`` with the options of its own config."""
    app = app or create_app(config, model)
    config = app.state.service.config
    port = free_port()
    # the options `sentitune serve` runs with (limits, timeouts, proxy trust), on a free port
    options = {**uvicorn_options(config), "host": "127.0.0.1", "port": port}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while not server.started:
        assert thread.is_alive(), "server failed to start"
        time.sleep(0.05)
    if wait:
        assert wait_healthy(url).status_code == 200
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def post(url, path, body, key=KEY, headers=None, **kw):
    headers = {**({"X-API-Key": key} if key else {}), **(headers or {})}
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=60, **kw)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (raises on the socket's timeout)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def assert_error(r, status, fragment=""):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == status and fragment in body["message"]
    assert body["request_id"] == r.headers["X-Request-ID"] and len(body["request_id"]) >= 8
    assert "Traceback" not in r.text
