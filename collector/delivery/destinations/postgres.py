"""PostgreSQL warehouse table (psycopg 3).

The table is created if missing: typed columns for the common Segment fields,
JSONB for properties, traits, context and integrations, ``message_id`` as the
primary key. A batch is COPYed straight into the table in one transaction; if
that hits a duplicate ``message_id`` (redelivery after a crash), the batch is
COPYed into a session-temporary staging table instead and moved with
``INSERT ... ON CONFLICT (message_id) DO NOTHING``, so redelivery never
duplicates a row and the common case costs one COPY.

Deletion (GDPR Art. 17/19): rows whose ``one_id`` (the OneID pseudonym in this
destination's domain) belongs to an erased person are deleted.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from collector.config import PostgresDestinationConfig
from collector.delivery.destinations.base import DeleteResult, SendResult
from collector.errors import DeliveryError

_decoder = msgspec.json.Decoder(dict[str, Any])
_json = msgspec.json.Encoder()
COLUMNS = (
    "message_id",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "one_id",
    "group_id",
    "previous_id",
    "timestamp",
    "sent_at",
    "received_at",
    "properties",
    "traits",
    "context",
    "integrations",
)


def ddl(schema: str, table: str) -> sql.Composed:
    return sql.SQL(
        """
        CREATE TABLE IF NOT EXISTS {t} (
            message_id text PRIMARY KEY,
            type text NOT NULL,
            event text,
            name text,
            user_id text,
            anonymous_id text,
            one_id text,
            group_id text,
            previous_id text,
            timestamp timestamptz,
            sent_at timestamptz,
            received_at timestamptz,
            properties jsonb,
            traits jsonb,
            context jsonb,
            integrations jsonb,
            loaded_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS {idx} ON {t} (one_id);
        """
    ).format(t=sql.Identifier(schema, table), idx=sql.Identifier(f"{table}_one_id"))


def _ts(value: object) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _jsonb(value: object) -> str | None:
    return None if value is None else _json.encode(value).decode()


def row(message: bytes) -> tuple[object, ...]:
    m = _decoder.decode(message)
    context = m.get("context") or {}
    marker = context.get("consentry") if isinstance(context, dict) else None
    return (
        m.get("messageId"),
        m.get("type"),
        m.get("event"),
        m.get("name"),
        m.get("userId"),
        m.get("anonymousId"),
        marker.get("oneId") if isinstance(marker, dict) else None,
        m.get("groupId"),
        m.get("previousId"),
        _ts(m.get("timestamp")),
        _ts(m.get("sentAt")),
        _ts(m.get("receivedAt")),
        _jsonb(m.get("properties")),
        _jsonb(m.get("traits")),
        _jsonb(context),
        _jsonb(m.get("integrations")),
    )


class PostgresDestination:
    config_type = PostgresDestinationConfig

    def __init__(self, config: PostgresDestinationConfig, *, data_dir: Path, **_: object) -> None:
        self.name = config.name
        dsn = config.dsn or (os.environ.get(config.dsn_env) if config.dsn_env else None)
        if not dsn:
            raise DeliveryError(
                f"destination {config.name}: set dsn or dsn_env (an environment variable)"
            )
        self._dsn = dsn
        self._schema = config.schema
        self._table = config.table
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self._schema, self._table)

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._dsn)
            async with self._conn.transaction():
                await self._conn.execute(ddl(self._schema, self._table))
                await self._conn.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE IF NOT EXISTS consentry_stage"
                        " (LIKE {t} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                    ).format(t=self.table)
                )
        return self._conn

    async def send(self, messages: list[bytes]) -> SendResult:
        try:
            rows = [row(m) for m in messages]
        except msgspec.DecodeError as exc:
            return SendResult(False, False, None, f"undecodable outbox payload: {exc}")
        try:
            conn = await self._connection()
            cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
            try:
                # Fast path: COPY straight into the table. A duplicate message_id
                # (redelivery after a crash) aborts it, and the batch takes the
                # staging path, whose ON CONFLICT skips what already landed.
                async with conn.transaction():
                    await self._copy(
                        conn,
                        sql.SQL("COPY {t} ({c}) FROM STDIN").format(t=self.table, c=cols),
                        rows,
                    )
            except psycopg.errors.UniqueViolation:
                async with conn.transaction():
                    await self._copy(
                        conn, sql.SQL("COPY consentry_stage ({}) FROM STDIN").format(cols), rows
                    )
                    await conn.execute(
                        sql.SQL(
                            "INSERT INTO {t} ({c}) SELECT {c} FROM consentry_stage"
                            " ON CONFLICT (message_id) DO NOTHING"
                        ).format(t=self.table, c=cols)
                    )
        except psycopg.errors.DataError as exc:
            return SendResult(False, False, None, f"PostgreSQL rejected the batch: {exc}")
        except psycopg.Error as exc:
            await self._drop()
            return SendResult(False, True, None, f"PostgreSQL: {type(exc).__name__}: {exc}")
        return SendResult(True)

    @staticmethod
    async def _copy(
        conn: psycopg.AsyncConnection[Any], statement: sql.Composed, rows: list[tuple[object, ...]]
    ) -> None:
        async with conn.cursor().copy(statement) as copy:
            for r in rows:
                await copy.write_row(r)

    async def delete(self, one_ids: list[str]) -> DeleteResult:
        try:
            conn = await self._connection()
            async with conn.transaction():
                cur = await conn.execute(
                    sql.SQL("DELETE FROM {t} WHERE one_id = ANY(%s)").format(t=self.table),
                    (one_ids,),
                )
            return DeleteResult(True, cur.rowcount, None)
        except psycopg.Error as exc:
            await self._drop()
            return DeleteResult(False, None, f"PostgreSQL: {exc}")

    async def _drop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._drop()
