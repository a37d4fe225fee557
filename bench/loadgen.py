"""A small HTTP/1.1 load generator for section 5: concurrent keep-alive clients in one process.

Why not threads with ``httpx``: on this 2-core machine the clients share the CPU with the
service they measure. 32 ``httpx`` threads in the benchmark's own process cost about as much
CPU per request as the service's whole request handling, and a thread that has its answer
then waits for the GIL before it can read the clock, so the clients' own queueing showed up
as the service's latency (client p50 23 ms above the service's own log in one run). Here the
clients are coroutines on one event loop (uvloop when installed) in a process of their own,
writing pre-built requests and reading answers with ``asyncio`` streams: tens of microseconds
per request, and the clock is read as soon as the last byte of an answer is in.

Run as ``python -m bench.loadgen`` with a JSON job on standard input::

    {"host": "127.0.0.1", "port": 8000, "headers": {"Authorization": "Bearer ..."},
     "method": "POST", "paths": ["/api/persons/X/cards", ...], "clients": 32,
     "budget_s": 12.0, "timeout_s": 30.0}

Every client first opens its connection (``GET /healthz``); the clock starts when all are
connected. Clients then take the next path until the paths run out or ``budget_s`` has passed
(requests in flight then still finish and count). The answer, on standard output, is JSON:
``{"latencies": [[status, seconds], ...], "errors": {"kind": count}, "wall_s": seconds}``,
one latency per answered request (from writing the request to having the whole answer).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

MAX_HEAD = 64 * 1024


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(
        self,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        host: str,
        port: int,
        headers: dict[str, str],
        timeout: float,
    ) -> None:
        self.reader, self.writer = streams
        self.host, self.port, self.timeout = host, port, timeout
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())

    @classmethod
    async def open(cls, host: str, port: int, headers: dict[str, str], timeout: float) -> Client:
        return cls(await asyncio.open_connection(host, port), host, port, headers, timeout)

    def close(self) -> None:
        self.writer.close()

    async def request(self, method: str, path: str) -> int:
        """Send one request without a body; return the status once the whole answer is in."""
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.head}"
            f"Content-Length: 0\r\n\r\n".encode("latin-1")
        )
        return await asyncio.wait_for(self._answer(), self.timeout)

    async def _answer(self) -> int:
        head = await self.reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise ValueError("answer head too large")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                await self._chunked()
                return status
        if length is None:
            raise ValueError("answer without Content-Length")
        await self.reader.readexactly(length)
        return status

    async def _chunked(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return


async def run(job: dict[str, Any]) -> dict[str, Any]:
    clients = await asyncio.gather(
        *(
            Client.open(
                job["host"], int(job["port"]), dict(job.get("headers", {})), job["timeout_s"]
            )
            for _ in range(int(job["clients"]))
        )
    )
    await asyncio.gather(*(client.request("GET", "/healthz") for client in clients))
    paths: Iterator[str] = iter(job["paths"])
    method = job.get("method", "POST")
    latencies: list[tuple[int, float]] = []
    errors: Counter[str] = Counter()
    finished: list[float] = []
    start = time.perf_counter()
    deadline = start + float(job["budget_s"])

    async def loop(client: Client) -> None:
        while time.perf_counter() < deadline:
            path = next(paths, None)
            if path is None:
                return
            sent = time.perf_counter()
            try:
                status = await client.request(method, path)
            except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                finished.append(time.perf_counter())
                return  # the connection is in an unknown state: this client stops
            now = time.perf_counter()
            latencies.append((status, now - sent))
            finished.append(now)

    try:
        await asyncio.gather(*(loop(client) for client in clients))
    finally:
        for client in clients:
            client.close()
    wall = (max(finished) if finished else time.perf_counter()) - start
    return {"latencies": latencies, "errors": dict(errors), "wall_s": wall}


def main() -> int:
    job = json.load(sys.stdin)
    try:
        import uvloop  # optional: the standard loop works, a bit slower
    except ImportError:
        result = asyncio.run(run(job))
    else:
        result = uvloop.run(run(job))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
