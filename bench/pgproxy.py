"""A counting PostgreSQL wire-protocol proxy: how many database round trips does one request cost?

Placed between a (separate, untimed) app process and the server, it forwards bytes unchanged and reads
both directions: every ReadyForQuery ('Z') the server sends after start-up ends one round trip — the
client had to wait for it before it could go on — and its status byte tells whether a transaction block
is still open ('T'/'E') or the round trip ended idle ('I': an implicit or explicitly committed
transaction). The SQL of each round trip comes from the client's Parse ('P') / Query ('Q') messages, and
from the statement name of Bind ('B') for asyncpg's cached prepared statements.

This counts what actually crosses the wire, including anything the driver adds on its own (statement
preparation, the pool's reset query on release), which pg_stat_statements would report as separate
statements without telling which request they belonged to.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counts:
    round_trips: int = 0
    idle_round_trips: int = 0  # ended outside a transaction block: one (implicit or committed) transaction each
    statements: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.round_trips = 0
        self.idle_round_trips = 0
        self.statements.clear()


def _cstring(payload: bytes, start: int) -> tuple[str, int]:
    end = payload.index(b"\0", start)
    return payload[start:end].decode("utf-8", "replace"), end + 1


def _short(sql: str) -> str:
    return " ".join(sql.split())[:90]


class _Session:
    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.started_up = False
        self.pending: list[str] = []
        self.prepared: dict[str, str] = {}
        self.client_buffer = b""
        self.server_buffer = b""
        self.client_first = True

    def from_client(self, data: bytes) -> None:
        self.client_buffer += data
        while True:
            buffer = self.client_buffer
            if self.client_first:
                if len(buffer) < 4:
                    return
                (length,) = struct.unpack("!I", buffer[:4])
                if len(buffer) < length:
                    return
                self.client_buffer = buffer[length:]
                self.client_first = False
                continue
            if len(buffer) < 5:
                return
            kind = buffer[:1]
            (length,) = struct.unpack("!I", buffer[1:5])
            if len(buffer) < 1 + length:
                return
            payload = buffer[5 : 1 + length]
            self.client_buffer = buffer[1 + length :]
            if kind == b"Q":
                self.pending.append(_short(_cstring(payload, 0)[0]))
            elif kind == b"P":
                name, offset = _cstring(payload, 0)
                sql = _short(_cstring(payload, offset)[0])
                if name:
                    self.prepared[name] = sql
                self.pending.append("prepare: " + sql)
            elif kind == b"B":
                _, offset = _cstring(payload, 0)
                statement, _ = _cstring(payload, offset)
                self.pending.append(self.prepared.get(statement, statement or "(unnamed)"))

    def from_server(self, data: bytes) -> None:
        self.server_buffer += data
        while len(self.server_buffer) >= 5:
            kind = self.server_buffer[:1]
            (length,) = struct.unpack("!I", self.server_buffer[1:5])
            if len(self.server_buffer) < 1 + length:
                return
            payload = self.server_buffer[5 : 1 + length]
            self.server_buffer = self.server_buffer[1 + length :]
            if kind != b"Z":
                continue
            if not self.started_up:
                self.started_up = True
                self.pending.clear()
                continue
            self.counts.round_trips += 1
            if payload[:1] == b"I":
                self.counts.idle_round_trips += 1
            self.counts.statements[" | ".join(dict.fromkeys(self.pending)) or "(none)"] += 1
            self.pending.clear()


class CountingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.counts = Counts()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        session = _Session(self.counts)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, observe: object) -> None:
            try:
                while data := await reader.read(65536):
                    observe(data)  # type: ignore[operator]
                    writer.write(data)
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        await asyncio.gather(
            pump(client_reader, server_writer, session.from_client),
            pump(server_reader, client_writer, session.from_server),
        )
