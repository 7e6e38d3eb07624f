"""A TCP proxy on loopback that stands between the agent and HQ and damages the traffic on purpose.

It works on bytes, not HTTP: agent and HQ talk TLS end to end, so what the proxy can do is what
a bad network or a broken middlebox does. Every piece of traffic read draws a fault from the plan:

- ``pass``: forward both ways untouched;
- ``slow``: forward both ways in small pieces with a pause before each (a slow link); when the
  agent's read timeout runs out first, it gives up on a batch that HQ then commits anyway;
- ``cut``: forward a random part of what HQ sent, then reset both sides (RST), so the agent loses
  the connection in the middle of a TLS record (the handshake, or an answer HQ already committed);
- ``truncate``: like ``cut`` but a clean close (FIN): the answer simply ends early.

    with FaultProxy(hq_port, plan={"pass": 1, "cut": 1}, seed=4) as proxy:
        url = proxy.url   # https://127.0.0.1:PORT, valid for HQ's certificate
        proxy.set_plan({"pass": 1})
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from types import TracebackType

FAULTS = ("pass", "slow", "cut", "truncate")
CHUNK = 4096


class FaultProxy:
    def __init__(self, upstream_port: int, *, plan: dict[str, float] | None = None, seed: int = 0,
                 slow_piece: int = 256,
                 slow_pause_s: tuple[float, float] = (0.05, 0.4)) -> None:
        self._upstream_port = upstream_port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._plan: dict[str, float] = {}
        self.set_plan(plan or {"pass": 1.0})
        self._slow_piece = slow_piece
        self._slow_pause_s = slow_pause_s
        self.counts: Counter[str] = Counter()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._started = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def set_plan(self, plan: dict[str, float]) -> None:
        unknown = set(plan) - set(FAULTS)
        if unknown or not plan:
            raise ValueError(f"plan: expected weights for some of {FAULTS}, got {plan}")
        with self._lock:
            self._plan = dict(plan)

    def _draw(self, answers: bool) -> str:
        with self._lock:
            plan = self._plan if answers else {k: v for k, v in self._plan.items() if k in ("pass", "slow")}
            if not plan:
                return "pass"
            names, weights = zip(*plan.items(), strict=True)
            fault = self._rng.choices(names, weights)[0]
            self.counts[f"{fault}_{'answer' if answers else 'request'}"] += 1
            return fault

    # -- the event loop thread ------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, sock=self._listener))
        self._started.set()
        self._loop.run_forever()
        for task in list(self._tasks):
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        self._loop.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(client_reader, client_writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            _close(client_writer)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        except OSError:
            self.counts["upstream_refused"] += 1
            return  # HQ is down: the agent sees its connection closed, as with a dead HQ behind a balancer
        upward = asyncio.ensure_future(self._forward(client_reader, upstream_writer, answers=False))
        downward = asyncio.ensure_future(self._forward(upstream_reader, client_writer, answers=True))
        ending = "pass"
        try:
            done, _ = await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
            ending = next(iter(done)).result()
        finally:
            for task in (upward, downward):
                task.cancel()
            await asyncio.gather(upward, downward, return_exceptions=True)
            if ending == "cut":
                _reset(client_writer)
                _reset(upstream_writer)
            _close(upstream_writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool) -> str:
        """One direction, one fault drawn per piece read; returns how the connection must end.

        Cuts and truncations only hit HQ's answers: that is where a lost answer after HQ committed
        turns into a resent batch. Slowness hits both ways (a crawling upload times the agent out).
        """
        while True:
            data = await reader.read(CHUNK)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return "pass"
            fault = self._draw(answers)
            if fault in ("cut", "truncate"):
                with self._lock:
                    keep = self._rng.randrange(len(data))
                writer.write(data[:keep])
                await writer.drain()
                return fault
            if fault == "slow":
                await self._trickle(writer, data)
            else:
                writer.write(data)
                await writer.drain()

    async def _trickle(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        for start in range(0, len(data), self._slow_piece):
            with self._lock:
                pause = self._rng.uniform(*self._slow_pause_s)
            await asyncio.sleep(pause)
            writer.write(data[start:start + self._slow_piece])
            await writer.drain()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: SO_LINGER on with a zero timeout."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        writer.close()
