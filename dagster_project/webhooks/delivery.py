"""Delivery: signed POSTs with short timeouts, exponential backoff, a dead letter after `max_attempts`.

A run only writes the outbox and starts `python -m dagster_project.webhooks` in its own
session (`spawn_deliverer`), which delivers until nothing is pending and exits; the API
process delivers from a thread (`enqueue_in_background`). Neither ever waits on a receiver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dagster_project.webhooks.signing import EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign
from dagster_project.webhooks.store import Delivery, WebhookStore, store_path

MAX_ATTEMPTS_ENV = "PERSONAS_WEBHOOK_MAX_ATTEMPTS"
BACKOFF_ENV = "PERSONAS_WEBHOOK_BACKOFF_SECONDS"
TIMEOUT_ENV = "PERSONAS_WEBHOOK_TIMEOUT_SECONDS"
PARALLEL_DELIVERIES = 4


@dataclass(frozen=True)
class DeliveryPolicy:
    """Attempt n (1-based) failing waits `backoff_seconds * 2**(n-1)` before the next; defaults: 2, 4, 8, 16 s."""

    max_attempts: int = 5
    backoff_seconds: float = 2.0
    timeout_seconds: float = 5.0

    @classmethod
    def from_environment(cls) -> DeliveryPolicy:
        return cls(
            max_attempts=int(os.environ.get(MAX_ATTEMPTS_ENV, cls.max_attempts)),
            backoff_seconds=float(os.environ.get(BACKOFF_ENV, cls.backoff_seconds)),
            timeout_seconds=float(os.environ.get(TIMEOUT_ENV, cls.timeout_seconds)),
        )

    def retry_at(self, attempt: int, now: float) -> float | None:
        """When to try again after failed attempt `attempt`; None once it was the last."""
        return None if attempt >= self.max_attempts else now + self.backoff_seconds * 2 ** (attempt - 1)


def post(delivery: Delivery, timeout_seconds: float) -> tuple[int | None, str | None, float]:
    """(HTTP status, error or None on a 2xx, latency in ms) of one signed POST."""
    request = urllib.request.Request(delivery.url, data=delivery.body, method="POST", headers={
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(delivery.secret, delivery.body),
        IDEMPOTENCY_HEADER: delivery.idempotency_key,
        EVENT_HEADER: delivery.event,
    })
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            response.read()
            status, error = response.status, None
    except urllib.error.HTTPError as failure:
        status, error = failure.code, f"HTTP {failure.code}"
    except (urllib.error.URLError, OSError) as failure:
        status, error = None, f"{type(failure).__name__}: {getattr(failure, 'reason', failure)}"
    return status, error, (time.perf_counter() - started) * 1000


def deliver_due(store: WebhookStore, policy: DeliveryPolicy) -> list[str]:
    """One attempt at every delivery due now, in parallel; their outcomes (delivered, pending, dead)."""
    claim_seconds = policy.timeout_seconds * 2 + 5
    due = store.claim_due(time.time(), claim_seconds)

    def attempt(delivery: Delivery) -> str:
        status, error, latency_ms = post(delivery, policy.timeout_seconds)
        retry_at = None if error is None else policy.retry_at(delivery.attempts + 1, time.time())
        return store.record_attempt(delivery, status, error, latency_ms, retry_at)

    if not due:
        return []
    with ThreadPoolExecutor(min(PARALLEL_DELIVERIES, len(due))) as pool:
        return list(pool.map(attempt, due))


def deliver_until_idle(store: WebhookStore, policy: DeliveryPolicy, max_seconds: float | None = None) -> None:
    """Deliver, sleeping until the next retry is due, until nothing is pending (or `max_seconds` passed)."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while True:
        deliver_due(store, policy)
        next_due = store.next_due()
        if next_due is None or (deadline is not None and time.monotonic() >= deadline):
            return
        time.sleep(min(max(0.0, next_due - time.time()) + 0.01, 60.0))


def spawn_deliverer(home: Path) -> subprocess.Popen:
    """Start a deliverer for `home` in its own session and return at once; its output goes to logs/webhooks.log."""
    log_path = home / "logs" / "webhooks.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "dagster_project.webhooks", str(home)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


_background: dict[Path, threading.Thread] = {}
_handed_over: dict[Path, list[tuple[str, dict]]] = {}
_wake: dict[Path, threading.Event] = {}
_background_lock = threading.Lock()


def enqueue_in_background(home: Path, event: str, payload: dict) -> None:
    """Hand `event` to this process's delivery thread (the API's), which writes the outbox and delivers.

    The caller (an API request) touches no file: an event handed over is lost only if the
    process dies before the thread wrote it, a moment later.
    """
    with _background_lock:
        _handed_over.setdefault(home, []).append((event, payload))
        running = _background.get(home)
        if running is not None and running.is_alive():
            _wake[home].set()
            return
        _wake[home] = threading.Event()
        thread = threading.Thread(target=_deliver_handed_over, args=(home, _wake[home]), name="webhook-delivery",
                                  daemon=True)
        _background[home] = thread
        thread.start()


def _deliver_handed_over(home: Path, wake: threading.Event) -> None:
    """Outbox the handed-over events, deliver what is due, wait for the next retry or event; end when idle."""
    store, policy = WebhookStore(store_path(home)), DeliveryPolicy.from_environment()
    while True:
        with _background_lock:
            events = _handed_over.pop(home, [])
            wake.clear()
        for event, payload in events:
            store.enqueue(event, payload)
        deliver_due(store, policy)
        next_due = store.next_due()
        with _background_lock:
            if next_due is None and not _handed_over.get(home):
                _background.pop(home, None)
                return
        wake.wait(60.0 if next_due is None else min(60.0, max(0.0, next_due - time.time()) + 0.01))
