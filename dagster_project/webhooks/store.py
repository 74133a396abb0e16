"""Subscriptions, the outbox and the delivery log, in `PERSONAS_HOME/webhooks.sqlite`.

SQLite rather than the warehouse: DuckDB admits one writing process, and the run, the API
and the background deliverer all write here at once; SQLite's WAL lets them, so a
delivery never waits for the warehouse lock nor holds it. Secrets are stored as given
(HMAC needs the secret itself, a hash would not do): the file is created with mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

EVENT_TYPES = ("persona.changed", "person.personas_changed", "drift.breached")
STORE_FILE = "webhooks.sqlite"

SCHEMA = """
create table if not exists webhook_subscriptions (
    id integer primary key autoincrement, url text not null, events text not null, secret text not null,
    created_at real not null);
create table if not exists webhook_outbox (
    idempotency_key text not null, subscription_id integer not null, event text not null, body blob not null,
    created_at real not null, attempts integer not null default 0, next_attempt_at real not null,
    claimed_until real, status text not null default 'pending', last_error text,
    primary key (idempotency_key, subscription_id));
create index if not exists webhook_outbox_due on webhook_outbox (status, next_attempt_at);
create table if not exists webhook_deliveries (
    idempotency_key text not null, subscription_id integer not null, event text not null, url text not null,
    attempt integer not null, status text not null, http_status integer, latency_ms real not null,
    error text, attempted_at real not null);
create view if not exists webhook_dead_letters as
    select o.idempotency_key, o.subscription_id, s.url, o.event, o.body, o.attempts, o.last_error
    from webhook_outbox o left join webhook_subscriptions s on s.id = o.subscription_id
    where o.status = 'dead';
"""


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    events: tuple[str, ...]
    secret: str


@dataclass(frozen=True)
class Delivery:
    """One pending (event, subscription) pair, claimed by a deliverer."""

    idempotency_key: str
    subscription_id: int
    event: str
    body: bytes
    attempts: int
    url: str
    secret: str


def store_path(home: Path) -> Path:
    return home / STORE_FILE


def existing_store(home: Path) -> WebhookStore | None:
    """The home's store, or None when no subscription was ever added: nothing to queue, and no file is made."""
    return WebhookStore(store_path(home)) if store_path(home).exists() else None


def idempotency_key(event: str, payload: dict) -> str:
    """Derived from the event's content: the same change announced twice (a rerun of a day) has the same key."""
    canonical = json.dumps({"event": event, "data": payload}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class WebhookStore:
    """Short-lived connections (one per call), so threads and processes share the file freely."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        with self._connect() as connection:
            connection.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            connection.execute("pragma journal_mode=wal")
            connection.execute("pragma synchronous=normal")  # WAL: no fsync per commit, only at checkpoints
            yield connection
        finally:
            connection.close()

    def add(self, url: str, events: list[str], secret: str) -> int:
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown or not events:
            raise ValueError(f"unknown event type(s) {', '.join(unknown) or '(none given)'}: expected some of "
                             f"{', '.join(EVENT_TYPES)}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        with self._connect() as connection:
            return connection.execute(
                "insert into webhook_subscriptions (url, events, secret, created_at) values (?, ?, ?, ?)",
                [url, ",".join(events), secret, time.time()],
            ).lastrowid

    def remove(self, subscription_id: int) -> bool:
        """Drop the subscription and its undelivered events; its log and dead letters stay (ids are never reused)."""
        with self._connect() as connection:
            connection.execute("delete from webhook_outbox where subscription_id = ? and status = 'pending'",
                               [subscription_id])
            return connection.execute("delete from webhook_subscriptions where id = ?", [subscription_id]).rowcount > 0

    def subscriptions(self, event: str | None = None) -> list[Subscription]:
        with self._connect() as connection:
            rows = connection.execute("select id, url, events, secret from webhook_subscriptions order by id").fetchall()
        found = [Subscription(row[0], row[1], tuple(row[2].split(",")), row[3]) for row in rows]
        return [s for s in found if event is None or event in s.events]

    def enqueue(self, event: str, payload: dict) -> str | None:
        """Queue the event for every subscriber of its type; its idempotency key, None if nobody subscribes.

        An event already queued under the same key is not queued again.
        """
        subscribers = self.subscriptions(event)
        if not subscribers:
            return None
        key = idempotency_key(event, payload)
        now = time.time()
        body = json.dumps({"id": key, "type": event, "created_at": now, "data": payload}, default=str).encode()
        with self._connect() as connection:
            connection.executemany(
                "insert or ignore into webhook_outbox (idempotency_key, subscription_id, event, body, created_at, "
                "next_attempt_at) values (?, ?, ?, ?, ?, ?)",
                [(key, subscriber.id, event, body, now, now) for subscriber in subscribers],
            )
        return key

    def claim_due(self, now: float, claim_seconds: float) -> list[Delivery]:
        """Pending deliveries whose time has come, claimed for `claim_seconds` so no other deliverer sends them."""
        with self._connect() as connection:
            connection.execute("begin immediate")
            rows = connection.execute(
                "select o.rowid, o.idempotency_key, o.subscription_id, o.event, o.body, o.attempts, s.url, s.secret "
                "from webhook_outbox o join webhook_subscriptions s on s.id = o.subscription_id "
                "where o.status = 'pending' and o.next_attempt_at <= ? and coalesce(o.claimed_until, 0) < ?",
                [now, now],
            ).fetchall()
            connection.executemany("update webhook_outbox set claimed_until = ? where rowid = ?",
                                   [(now + claim_seconds, row[0]) for row in rows])
            connection.execute("commit")
        return [Delivery(*row[1:]) for row in rows]

    def record_attempt(self, delivery: Delivery, http_status: int | None, error: str | None, latency_ms: float,
                       next_attempt_at: float | None) -> str:
        """Log the attempt and settle the outbox row: delivered, retried at `next_attempt_at`, or dead (None)."""
        attempt = delivery.attempts + 1
        status = "delivered" if error is None else "pending" if next_attempt_at is not None else "dead"
        with self._connect() as connection:
            connection.execute("begin immediate")
            connection.execute(
                "insert into webhook_deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [delivery.idempotency_key, delivery.subscription_id, delivery.event, delivery.url, attempt,
                 "ok" if error is None else "failed", http_status, latency_ms, error, time.time()],
            )
            connection.execute(
                "update webhook_outbox set attempts = ?, status = ?, last_error = ?, claimed_until = null, "
                "next_attempt_at = coalesce(?, next_attempt_at) where idempotency_key = ? and subscription_id = ?",
                [attempt, status, error, next_attempt_at, delivery.idempotency_key, delivery.subscription_id],
            )
            connection.execute("commit")
        return status

    def next_due(self) -> float | None:
        """When the earliest pending delivery is due, None when nothing is pending."""
        with self._connect() as connection:
            return connection.execute(
                "select min(max(next_attempt_at, coalesce(claimed_until, 0))) from webhook_outbox where status = 'pending'"
            ).fetchone()[0]

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        """Read the log, the outbox or the dead letters (CLI, tests, KPIs)."""
        with self._connect() as connection:
            return connection.execute(sql, parameters or []).fetchall()
