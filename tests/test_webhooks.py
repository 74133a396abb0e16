"""Webhooks against a real receiver on 127.0.0.1: signatures, retries, idempotency keys, dead letters, no waiting."""

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetSelection

from dagster_project.paths import warehouse_path
from dagster_project.webhooks.delivery import BACKOFF_ENV, TIMEOUT_ENV, DeliveryPolicy, deliver_until_idle
from dagster_project.webhooks.events import person_personas_changed
from dagster_project.webhooks.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign, verify
from dagster_project.webhooks.store import WebhookStore, store_path
from generated_run import LAST
from pipeline_helpers import materialize_day, using_home

SECRET = "test-secret"
FAST = DeliveryPolicy(max_attempts=3, backoff_seconds=0.01, timeout_seconds=2.0)


class Receiver:
    """Answers each POST with the next of `statuses` (the last one repeats), after `release` is set."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.received, self.release = statuses, [], threading.Event()
        self.release.set()
        self.got_one = threading.Event()

    def handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"body": body, "key": self.headers[IDEMPOTENCY_HEADER],
                                          "verified": verify(SECRET, self.headers[SIGNATURE_HEADER], body)})
                receiver.got_one.set()
                receiver.release.wait(60)
                self.send_response(receiver.statuses[min(len(receiver.received), len(receiver.statuses)) - 1])
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        return Handler


@contextmanager
def receiving(statuses: list[int]) -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver(statuses)
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


def test_a_signature_binds_body_secret_and_time():
    body = b'{"a": 1}'
    header = sign(SECRET, body, timestamp=1_000)
    assert verify(SECRET, header, body, now=1_100)
    assert not verify(SECRET, header, b'{"a": 2}', now=1_100)
    assert not verify("other", header, body, now=1_100)
    assert not verify(SECRET, header, body, now=1_000 + 301)  # a replay after the tolerance
    assert not verify(SECRET, "v1=abc", body, now=1_100)


def test_a_receiver_failing_twice_gets_the_event_on_the_third_try_with_one_key(tmp_path: Path):
    store = WebhookStore(store_path(tmp_path))
    with receiving([500, 503, 200]) as (receiver, url):
        store.add(url, ["drift.breached"], SECRET)
        key = store.enqueue("drift.breached", {"model_date": "2026-10-02", "metrics": []})
        assert store.enqueue("drift.breached", {"model_date": "2026-10-02", "metrics": []}) == key
        deliver_until_idle(store, FAST)
    assert [r["key"] for r in receiver.received] == [key, key, key]
    assert all(r["verified"] for r in receiver.received)
    assert len({r["body"] for r in receiver.received}) == 1  # retries resend the very same event
    log = store.query("select attempt, status, http_status from webhook_deliveries order by attempt")
    assert log == [(1, "failed", 500), (2, "failed", 503), (3, "ok", 200)]
    assert store.query("select status from webhook_outbox") == [("delivered",)]


def test_a_dead_receiver_ends_in_the_dead_letters_after_max_attempts(tmp_path: Path):
    store = WebhookStore(store_path(tmp_path))
    with receiving([200]) as (_, url):
        pass  # closed: nothing listens on its port any more
    subscription_id = store.add(url, ["persona.changed"], SECRET)
    key = store.enqueue("persona.changed", {"model_date": "2026-10-02", "personas": []})
    assert store.enqueue("drift.breached", {"model_date": "2026-10-02"}) is None  # nobody subscribes to it
    deliver_until_idle(store, FAST)
    assert store.query("select idempotency_key, attempts from webhook_dead_letters") == [(key, 3)]
    assert store.remove(subscription_id) and store.add(url, ["persona.changed"], SECRET) != subscription_id
    assert store.enqueue("persona.changed", {"model_date": "2026-10-02", "personas": []}) == key  # queued anew
    assert store.query("select count(*) from webhook_outbox where status = 'pending'") == [(1,)]
    assert [row[0] for row in store.query("select status from webhook_deliveries")] == ["failed"] * 3
    assert (store_path(tmp_path).stat().st_mode & 0o777) == 0o600


def test_an_api_update_that_reorders_a_persons_personas_is_delivered_in_the_background(tmp_path: Path):
    before = pl.DataFrame({"persona_id": [1, 2], "weight": [0.6, 0.4]})
    after = pl.DataFrame({"persona_id": [1, 2], "weight": [0.3, 0.7]})
    assert person_personas_changed(tmp_path, "p-1", date(2026, 10, 2), before, after) is None
    assert not store_path(tmp_path).exists()  # nobody ever subscribed: nothing queued, no store made
    with receiving([200]) as (receiver, url):
        WebhookStore(store_path(tmp_path)).add(url, ["person.personas_changed"], SECRET)
        assert person_personas_changed(tmp_path, "p-1", date(2026, 10, 2), before, before) is None
        key = person_personas_changed(tmp_path, "p-1", date(2026, 10, 2), before, after)
        assert receiver.got_one.wait(30)
    event = json.loads(receiver.received[0]["body"])
    assert receiver.received[0]["key"] == key and event["type"] == "person.personas_changed"
    assert event["data"]["personas"] == [{"persona_id": 1, "weight": 0.3}, {"persona_id": 2, "weight": 0.7}]


def test_the_daily_run_queues_and_returns_while_the_receiver_still_holds_the_delivery(
        generated_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(TIMEOUT_ENV, "3600")  # an inline delivery would hold the run for an hour
    monkeypatch.setenv(BACKOFF_ENV, "0.01")
    home = tmp_path / "home"
    shutil.copytree(generated_run.home, home, ignore=shutil.ignore_patterns("landing", "logs"))
    with using_home(home), receiving([200]) as (receiver, url):
        store = WebhookStore(store_path(home))
        store.add(url, ["persona.changed"], SECRET)
        receiver.release.clear()
        with duckdb.connect(str(warehouse_path(home))) as connection:  # relabel one persona of the last day
            connection.execute("update personas set label = label || ' renamed' where event_date = ? and persona_id = "
                               "(select min(persona_id) from personas where event_date = ?)", [LAST, LAST])
        result = materialize_day(LAST, selection=AssetSelection.assets("webhook_events"))
        assert result.success
        assert store.query("select status, attempts from webhook_outbox") == [("pending", 0)]
        assert receiver.got_one.wait(60)  # the background deliverer reached the receiver after the run ended
        receiver.release.set()
        deadline = time.monotonic() + 60
        while store.query("select status from webhook_outbox") != [("delivered",)] and time.monotonic() < deadline:
            time.sleep(0.1)
    event = json.loads(receiver.received[0]["body"])
    assert receiver.received[0]["verified"] and event["data"]["model_date"] == LAST.isoformat()
    assert any(persona["label_today"].endswith(" renamed") for persona in event["data"]["personas"])
    assert store.query("select status from webhook_outbox") == [("delivered",)]
