"""events.jsonl downloads simulated in the workers and streamed back through the channel layer.

The web process only validates the link and writes the HTTP response; the simulating is a worker's, as a live
run's is, under the same budgets: a download is one more job in the worker's tick, sharing its client's part of
the process's CPU (`workers.Worker.simulate`), and a worker takes at most `EXPORTS_PER_PROCESS` at once.

The conversation, over the channel layer (Redis, or the default pool's bridge):

1. The web process counts the download among its client's in the store (at most ``EXPORTS_PER_CLIENT`` at once,
   across processes) and sends ``export.start`` on `EXPORT_CHANNEL`, a work queue: one worker takes it.
2. That worker probes it (`export.Export`: a tenth of its budgets) and answers ``export.opened`` on the web
   process's reply channel: refused (422, with the CLI command) or accepted, with the worker's own channel.
3. It sends the lines as ``export.chunk`` messages of about `CHUNK_CHARS` characters, numbered; the web process
   acknowledges each one once it has written it to the response, and the worker has at most `WINDOW` chunks not
   yet acknowledged (a download goes no faster than its web process takes it, and holds little memory).
4. A client that goes away ends the response (`DownloadResponse`): the web process sends ``export.cancel`` and
   the worker drops the job. A worker that hears nothing for `ACK_TIMEOUT` (its web process died) drops it too;
   a web process that hears nothing for `CHUNK_TIMEOUT` (its worker died) ends the response with a line saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from redis.exceptions import RedisError

from .export import Export
from .player import Player
from .registry import get_pattern
from .runs import scenario_of

EXPORT_CHANNEL = "playground-exports.start"
EXPORTS_PER_PROCESS = 4  # downloads one worker simulates at once; the next ones wait for another worker
CHUNK_CHARS = 64 * 1024  # about this much text per message
FLUSH_EVERY = 0.5  # seconds: lines simulated are sent at least this often, even short of a chunk
WINDOW = 4  # chunks sent and not yet acknowledged, at most
OPEN_TIMEOUT = 20.0  # seconds for a worker to take a download and answer its probe (the pool may be starting)
CHUNK_TIMEOUT = 15.0  # seconds without a chunk after which the web process takes the worker for dead
ACK_TIMEOUT = 30.0  # seconds without an acknowledgement after which the worker takes the web process for gone
SLOT_SECONDS = 60.0  # a download counted in the store lapses this long after its web process last renewed it
UNREACHABLE = "The server cannot reach its Redis (REDIS_URL): downloads cannot be simulated until it can."


def error_line(text: str) -> str:
    """The last line of a download cut short (without its newline): what stopped it, how to get the whole stream."""
    return json.dumps({"error": text}, separators=(",", ":"))


class DownloadRefused(Exception):
    """A download that cannot be served: its HTTP status and the text that says why and what to do instead."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


class ExportJob:
    """A download in a worker: a job of the worker's tick (``client``, ``cpu``, `wants_cpu`, `advance`), as a live
    run is, plus the messages it has for its web process (`outbox`)."""

    def __init__(self, message: dict[str, Any], worker: str, channel: str):
        pattern = get_pattern(message["pattern"])
        if pattern is None:
            raise ValueError(f"no pattern {message['pattern']!r}")
        player = Player(pattern, scenario_of(pattern, message["query"]), settings.PLAYGROUND)
        self.export = Export(
            player, float(message["until"]), max_events=message["max_events"], cpu_seconds=message["cpu_seconds"]
        )
        self.id, self.client, self.reply = message["export"], message["client"], message["reply"]
        self.cut_short = message["cut_short"]
        self.opened: dict[str, Any] | None = None  # the answer to the probe, once there is one
        self.told = False  # the answer was sent
        self.lines: list[str] = []  # simulated, not sent yet
        self.chars = 0  # in ``lines``, newlines included
        self.finished = False  # every line is in ``lines`` or sent
        self.ended = False  # the last chunk was sent
        self.sent = self.acked = 0
        self.last_sent = self.heard = time.monotonic()
        self.cpu = 0.0
        self.worker, self.channel = worker, channel

    @property
    def over(self) -> bool:
        """Nothing more to do: refused, or the last chunk sent."""
        return self.told and (self.refused or self.ended)

    @property
    def refused(self) -> bool:
        return bool(self.opened and self.opened["refused"])

    def wants_cpu(self) -> bool:
        if self.finished:
            return False
        if self.opened is None:  # probing: nothing may be sent before the verdict
            return True
        return self.chars < CHUNK_CHARS and self.sent - self.acked < WINDOW

    def advance(self, wall: float, budget: float) -> None:
        """Simulate for at most ``budget`` CPU seconds (``wall`` is a live run's concern, not a download's)."""
        export = self.export
        started = time.perf_counter()
        while self.wants_cpu():
            left = budget - (time.perf_counter() - started)
            if left <= 0:
                break
            self._add(export.slice(min(Export.SLICE_CPU, left)))
            if self.opened is None and not export.probing:
                too_much = export.projected_over()
                self.opened = self._opened(too_much or "")
                self.finished = bool(too_much)
            elif self.opened is not None and not export.done and export.spent:
                self._add([error_line(self.cut_short)])
                self.finished = True
            if export.done:
                self.finished = True
        self.cpu = time.perf_counter() - started

    def _add(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        self.chars += sum(map(len, lines)) + len(lines)

    def _opened(self, refused: str) -> dict[str, Any]:
        return {
            "type": "export.opened",
            "export": self.id,
            "worker": self.worker,
            "channel": self.channel,
            "refused": refused,
        }

    def outbox(self, now: float) -> list[dict[str, Any]]:
        """The messages to send now: the verdict on the probe, then chunks, as the window allows."""
        out: list[dict[str, Any]] = []
        if self.opened is None:
            return out
        if not self.told:
            self.told = True
            out.append(self.opened)
            if self.refused:
                self.lines.clear()
                return out
        while self.lines and self.sent - self.acked < WINDOW:
            if not (self.finished or self.chars >= CHUNK_CHARS or now - self.last_sent >= FLUSH_EVERY):
                break
            out.append(self._chunk(now))
        if self.finished and not self.lines and not self.ended:  # every line went before the end was known
            out.append(self._chunk(now))
        return out

    def _chunk(self, now: float) -> dict[str, Any]:
        size = count = 0
        while count < len(self.lines) and (count == 0 or size < CHUNK_CHARS):
            size += len(self.lines[count]) + 1
            count += 1
        taken, self.lines = self.lines[:count], self.lines[count:]
        self.chars -= size
        self.sent += 1
        self.last_sent = now
        self.ended = self.finished and not self.lines
        data = "".join(line + "\n" for line in taken)
        return {"type": "export.chunk", "export": self.id, "n": self.sent, "data": data, "end": self.ended}

    def hear(self, message: dict[str, Any]) -> None:
        """An acknowledgement from the web process (a cancel is the worker's to act on)."""
        if message.get("action") == "ack" and isinstance(message.get("n"), int):
            self.acked = max(self.acked, min(message["n"], self.sent))
            self.heard = time.monotonic()

    def abandoned(self, now: float) -> bool:
        """Its web process has gone silent with chunks unacknowledged (it died): no one will read the rest."""
        return self.sent > self.acked and now - self.heard > ACK_TIMEOUT


class Download:
    """One download as its web process sees it: counted for its client, opened with a worker, then streamed."""

    def __init__(self, live: Any, *, pattern: str, query: str, until: float, client: str, command: str):
        self.layer, self.store = live.layer, live.store
        self.id = secrets.token_urlsafe(12)
        self.client = client
        self.limits = settings.PLAYGROUND
        self.command = command
        self.start = {
            "type": "export.start",
            "export": self.id,
            "client": client,
            "pattern": pattern,
            "query": query,
            "until": until,
            "max_events": self.limits["EXPORT_MAX_EVENTS"],
            "cpu_seconds": self.limits["EXPORT_CPU_SECONDS"],
            "cut_short": f"stopped at this download's limit of events or CPU; the whole stream: {command}",
        }
        self.reply = ""
        self.worker_channel = ""
        self.worker = ""
        self.ended = False

    async def open(self) -> None:
        """Count it and have a worker probe it; raises `DownloadRefused` when it cannot be served."""
        try:
            await self._open()
        except (OSError, RedisError):
            await self.close()
            raise DownloadRefused(503, UNREACHABLE) from None
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> None:
        limit = self.limits["EXPORTS_PER_CLIENT"]
        if not await self.store.open_slot("exports", self.client, self.id, limit, SLOT_SECONDS):
            raise DownloadRefused(
                429, f"Too many downloads at once from your address (at most {limit}): wait for one to finish."
            )
        self.reply = await self.layer.new_channel()
        await self.layer.send(
            EXPORT_CHANNEL, {**self.start, "reply": self.reply, "until_wall": time.time() + OPEN_TIMEOUT}
        )
        try:
            opened = await asyncio.wait_for(self.layer.receive(self.reply), OPEN_TIMEOUT)
        except TimeoutError:
            raise DownloadRefused(
                503,
                f"No worker is free to simulate this download now: try again soon, or print it with\n{self.command}",
            ) from None
        if "problem" in opened:
            problem = opened["problem"]
            raise DownloadRefused(
                503, f"A worker cannot simulate this download ({problem}): print it with\n{self.command}"
            )
        self.worker, self.worker_channel = opened["worker"], opened["channel"]
        if opened["refused"]:
            self.ended = True
            raise DownloadRefused(
                422,
                f"This download would take {opened['refused']}: ask for less (a smaller until=) or print it with\n"
                f"{self.command}",
            )

    async def chunks(self) -> AsyncIterator[str]:
        """The lines, chunk by chunk, each acknowledged once written; the worker stops if this stops early. A worker
        or a Redis gone mid-way ends the stream with a line that says so, as the budget does."""
        renewed = time.monotonic()
        try:
            while not self.ended:
                try:
                    chunk = await asyncio.wait_for(self.layer.receive(self.reply), CHUNK_TIMEOUT)
                except TimeoutError:
                    stopped = f"the worker simulating this download stopped; the whole stream: {self.command}"
                    yield error_line(stopped) + "\n"
                    return
                self.ended = chunk["end"]
                if chunk["data"]:
                    yield chunk["data"]
                if not self.ended:
                    ack = {"type": "export.command", "export": self.id, "action": "ack", "n": chunk["n"]}
                    await self.layer.send(self.worker_channel, ack)
                if time.monotonic() - renewed > SLOT_SECONDS / 3:
                    renewed = time.monotonic()
                    await self.store.renew_slots("exports", {self.id: self.client}, SLOT_SECONDS)
        except (OSError, RedisError):
            yield error_line(UNREACHABLE) + "\n"
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the worker's job unless it ended, and stop counting the download; never raises."""
        with contextlib.suppress(Exception):
            if not self.ended and self.worker_channel:
                self.ended = True
                await self.layer.send(
                    self.worker_channel, {"type": "export.command", "export": self.id, "action": "cancel"}
                )
        with contextlib.suppress(Exception):
            await self.store.close_slot("exports", self.client, self.id)


class DownloadResponse(StreamingHttpResponse):
    """A download's lines as an HTTP response that stops the worker's job when it ends early. When the client goes
    away Django closes the response's own iterator (``aclosing``), not the generator inside it, which would stop
    the job only when the garbage collector got to it."""

    def __init__(self, download: Download, **kwargs: Any):
        super().__init__(download.chunks(), **kwargs)
        self.download = download

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in super().__aiter__():
                yield part
        finally:
            await self.download.close()
