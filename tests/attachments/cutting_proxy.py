"""A TCP proxy that cuts every connection after a fixed number of bytes sent upstream.

Sits between a client and a real server: bytes flow both ways untouched until the
client has sent ``cut_every`` bytes through the current connection; then both sockets
are closed mid-stream, exactly like a phone losing signal halfway through a request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class CuttingProxy:
    def __init__(self, upstream_host: str, upstream_port: int, cut_every: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.cut_every = cut_every
        self.cuts = 0
        self.bytes_up = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        sent = [0]
        done = threading.Event()

        def close_both() -> None:
            done.set()
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

        def pump_up() -> None:
            try:
                while not done.is_set():
                    data = client.recv(65536)
                    if not data:
                        break
                    room = self.cut_every - sent[0]
                    if len(data) >= room:
                        upstream.sendall(data[:room])
                        with self._lock:
                            self.cuts += 1
                            self.bytes_up += room
                        break  # the budget is spent: drop the connection mid-request
                    upstream.sendall(data)
                    sent[0] += len(data)
                    with self._lock:
                        self.bytes_up += len(data)
            except OSError:
                pass
            close_both()

        def pump_down() -> None:
            try:
                while not done.is_set():
                    data = upstream.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
            except OSError:
                pass
            close_both()

        threading.Thread(target=pump_down, daemon=True).start()
        pump_up()
