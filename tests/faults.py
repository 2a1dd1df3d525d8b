"""Faults for loopback tests: a TCP proxy that forwards to a real server and, when told to,
lets the server execute a request but drops its reply and closes the connection; and a
listener that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections.abc import Callable, Iterator


class DroppingProxy:
    """Forward 127.0.0.1:port to a target; drop replies of chosen requests.

    `should_drop(request_bytes)` decides per request chunk; the server still runs the request,
    the client sees its connection closed instead of the reply (an outcome-unknown write).
    """

    def __init__(
        self,
        target_port: int,
        *,
        should_drop: Callable[[bytes], bool] | None = None,
        drop_rate: float = 0.0,
        match: bytes = b"EVALSHA",
        seed: int = 1234,
    ) -> None:
        self.target_port = target_port
        self._random = random.Random(seed)
        self._should_drop = should_drop or (
            lambda request: match in request.upper() and self._random.random() < drop_rate
        )
        self.dropped = 0
        self.forwarded = 0
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        sock.close()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("proxy did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        drop_next = asyncio.Event()

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                if self._should_drop(data):
                    drop_next.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                if drop_next.is_set():
                    self.dropped += 1
                    writer.transport.abort()
                    up_writer.transport.abort()
                    return
                self.forwarded += 1
                writer.write(data)
                await writer.drain()
            writer.close()

        tasks = [
            asyncio.ensure_future(client_to_server()),
            asyncio.ensure_future(server_to_client()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        writer.transport.abort()
        up_writer.transport.abort()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            # Open connections are cancelled, not abandoned: a loop collected with pending
            # tasks logs "Task was destroyed but it is pending!".
            current = asyncio.current_task()
            tasks = [task for task in asyncio.all_tasks() if task is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(stop(), self._loop)
        self._thread.join(5)


class CountingProxy(DroppingProxy):
    """Forward 127.0.0.1:port to a target and count the connections clients open to it.

    Every accepted connection counts, also when the target is down (the proxy then closes
    it at once): the count is the number of connection attempts a client made.
    """

    def __init__(self, target_port: int) -> None:
        self.accepted = 0
        super().__init__(target_port, should_drop=lambda _request: False)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await super()._handle(reader, writer)


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts connections and never answers anything."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(conn)  # kept open, never read from, never written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()
