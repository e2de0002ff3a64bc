"""The HTTP app on a free loopback port in a background thread: for a program that embeds the
server beside its own loop, and for the serve benchmark and tests (a real uvicorn, a real
socket, nothing mocked)."""

from __future__ import annotations

import socket
import threading
import time


class LocalServer:
    """uvicorn serving ``app`` on 127.0.0.1 (``port`` 0: a free one); ``url`` once started."""

    def __init__(self, app, port: int = 0, start_timeout: float = 60.0):
        import uvicorn

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", port))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="edgetts-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 60.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
