"""The Persona API over HTTP: a real home (generated, materialised through Dagster), a real uvicorn server.

One small home per module (3 days x 300 people), the graph run up to the champion alias,
then every route over a socket with urllib, bad input included.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import polars as pl
import pytest
import uvicorn
from dagster import AssetSelection

from dagster_project.api.app import MAX_BODY_BYTES, create_app
from dagster_project.api.schemas import MAX_EVENTS_PER_REQUEST
from dagster_project.api.service import PersonaService
from dagster_project.api.snapshot import settings_from_params
from dagster_project.api.updates import EVENT_SCHEMA, assign_to_personas, posted_memories
from dagster_project.generator import generate
from dagster_project.paths import landing_dir, warehouse_path
from dagster_project.tracking.model import INPUT_COLUMNS
from dagster_project.tracking.registry import current_champion
from dagster_project.tracking.store import MlflowStore
from pipeline_helpers import WAREHOUSE_ASSETS, materialize_range, query, using_home

START = date(2026, 10, 1)
LAST = START + timedelta(days=2)
# The whole warehouse (its dbt tests span every model) and the persona chain up to the champion alias.
UP_TO_CHAMPION = WAREHOUSE_ASSETS | AssetSelection.assets("champion_model").upstream()


@contextmanager
def serving(app) -> Iterator[str]:
    """`app` under uvicorn in a thread on a free port; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def call(base_url: str, method: str, path: str, body: object = None, raw: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(base URL, service, home) over a home materialised up to the champion alias."""
    with using_home(tmp_path_factory.mktemp("api")) as home:
        generate(home, days=3, people=300, events_per_day=1500, seed=11, start_date=START, world="easy")
        assert materialize_range(START, LAST, selection=UP_TO_CHAMPION).success
        service = PersonaService(home, lock_wait_seconds=1.0)
        with serving(create_app(service)) as base_url:
            yield base_url, service, home


def event(timestamp: str, **fields) -> dict:
    return {"timestamp": timestamp, "source": "web", "action": "page_view", **fields}


def test_health_names_the_champion_day_and_version(api):
    base_url, _, _ = api
    status, health = call(base_url, "GET", "/health")
    champion = current_champion(MlflowStore())
    assert status == 200 and health["status"] == "ok"
    assert health["as_of"] == LAST.isoformat() == champion.tags["partition_date"]
    assert health["model_version"] == str(champion.version)
    assert health["persons"] == query("select count(*) from dim_persons")[0][0]


def test_catalogue_is_the_champion_days_personas_with_evidence(api):
    base_url, _, _ = api
    status, catalogue = call(base_url, "GET", "/personas")
    rows = query("select persona_id, label, quality, evidence_memory_ids from personas where event_date = ? "
                 "order by persona_id", [LAST])
    assert status == 200 and catalogue["as_of"] == LAST.isoformat()
    served = catalogue["personas"]
    assert [(p["persona_id"], p["label"]) for p in served] == [(row[0], row[1]) for row in rows]
    assert [p["quality"] for p in served] == pytest.approx([row[2] for row in rows])
    summaries = dict(query("select memory_id, summary from intent_memories"))
    assert [[e["memory_id"] for e in p["evidence"]] for p in served] == [row[3] for row in rows]
    assert all(e["summary"] == summaries[e["memory_id"]] for p in served for e in p["evidence"])


def _person_with_personas(minimum: int) -> str:
    return query("select person_id from user_personas where event_date = ? group by 1 having count(*) >= ? "
                 "order by 1 limit 1", [LAST, minimum])[0][0]


def test_a_persons_view_is_their_user_personas_row_for_row(api):
    base_url, _, _ = api
    person = _person_with_personas(2)
    status, view = call(base_url, "GET", f"/persons/{person}/personas")
    rows = query("select persona_id, weight, label, evidence_memory_ids from user_personas "
                 "where event_date = ? and person_id = ? order by weight desc, persona_id", [LAST, person])
    assert status == 200 and view["includes_posted_events"] is False
    assert [(p["persona_id"], p["label"], [e["memory_id"] for e in p["evidence"]]) for p in view["personas"]] == [
        (row[0], row[2], row[3]) for row in rows]
    assert [p["weight"] for p in view["personas"]] == pytest.approx([row[1] for row in rows])
    assert all(e["summary"] and not e["posted"] for p in view["personas"] for e in p["evidence"])


def test_a_person_is_found_by_a_raw_identifier_too(api):
    base_url, _, home = api
    customers = pl.read_csv(sorted((landing_dir(home) / "crm" / "customers").glob("*.csv"))[0], infer_schema=False)
    customer = customers.drop_nulls("social_handle").row(0, named=True)
    person = query("select person_id from dim_person_identifiers where identifier = ?",
                   [f"customer:{customer['customer_id']}"])[0][0]
    for reference in (f"customer:{customer['customer_id']}", f"handle:{customer['social_handle']}"):
        status, view = call(base_url, "GET", f"/persons/{reference}/personas")
        assert (status, view["person_id"]) == (200, person)


def test_an_unknown_person_is_a_404_naming_them(api):
    base_url, _, _ = api
    for method, path, body in (("GET", "/persons/p-nobody/personas", None),
                               ("POST", "/persons/p-nobody/events", {"events": [event("2026-10-04T10:00:00Z")]})):
        status, answer = call(base_url, method, path, body)
        assert status == 404 and "unknown person 'p-nobody'" in answer["detail"]


def _events_of(memory_ids: list[str], day: date) -> list[dict]:
    """The warehouse events of some memories, retimed into one session on `day`, as a POST body's events."""
    rows = query("""select e.source, e.action, e.object_id, e.category, e.text
                    from (select unnest(event_ids) as event_id from intent_memories where memory_id in
                          (select unnest(?::varchar[]))) as m join fct_events e using (event_id)
                    order by e.ts limit 20""", [memory_ids])
    return [{"timestamp": f"{day}T09:{minute:02d}:00Z", "source": source, "action": action, "object_id": object_id,
             "category": category, "text": text}
            for minute, (source, action, object_id, category, text) in enumerate(rows)]


def test_posted_events_are_assigned_by_the_champion_and_move_the_persons_weights(api):
    base_url, _, _ = api
    person = _person_with_personas(1)
    held = {row[0] for row in query("select persona_id from user_personas where event_date = ? and person_id = ?",
                                    [LAST, person])}
    new_persona, evidence = query("select persona_id, evidence_memory_ids from personas where event_date = ? "
                                  "and persona_id not in (select unnest(?::bigint[])) order by share desc limit 1",
                                  [LAST, sorted(held)])[0]
    events = _events_of(evidence, LAST + timedelta(days=1))

    status, answer = call(base_url, "POST", f"/persons/{person}/events", {"events": events})
    assert status == 200, answer
    assert answer["new_events"] == len(events) == 20
    assert answer["memories"] and {m["persona_id"] for m in answer["memories"]} == {new_persona}
    assert sum(m["n_events"] for m in answer["memories"]) + answer["events_without_intent"] == len(events)
    view = answer["view"]
    weights = {p["persona_id"]: p["weight"] for p in view["personas"]}
    assert view["includes_posted_events"] and weights.get(new_persona, 0) > 0
    assert sum(weights.values()) == pytest.approx(1.0)
    assert call(base_url, "GET", f"/persons/{person}/personas") == (200, view)

    status, again = call(base_url, "POST", f"/persons/{person}/events", {"events": events})
    assert status == 200 and again["new_events"] == 0 and again["view"] == view


def test_a_persons_own_events_posted_again_give_the_pipelines_memories_and_change_nothing(api):
    """Same segmentation rule as the daily run, and no double counting of what the warehouse holds."""
    base_url, _, _ = api
    person = query("select person_id from intent_memories where event_date = ? and person_id in "
                   "(select person_id from user_personas where event_date = ?) group by 1 order by count(*) desc "
                   "limit 1", [LAST, LAST])[0][0]
    events = [{"event_id": event_id, "timestamp": ts.isoformat(), "source": source, "action": action,
               "object_id": object_id, "category": category, "text": text}
              for event_id, ts, source, action, object_id, category, text in query(
                  "select event_id, ts, source, action, object_id, category, text from fct_events "
                  "where event_date = ? and person_id = ? order by ts", [LAST, person])]
    expected = query("""select m.memory_id, m.intent, m.n_events, m.summary, a.persona_id
                        from intent_memories m join memory_assignments a on a.memory_id = m.memory_id
                         and a.event_date = m.event_date
                        where m.event_date = ? and m.person_id = ? order by m.start_ts""", [LAST, person])
    _, before = call(base_url, "GET", f"/persons/{person}/personas")

    status, answer = call(base_url, "POST", f"/persons/{person}/events", {"events": events})
    assert status == 200 and len(expected) >= 2
    assert [(m["memory_id"], m["intent"], m["n_events"], m["summary"], m["persona_id"])
            for m in answer["memories"]] == expected
    assert [(p["persona_id"], p["label"]) for p in answer["view"]["personas"]] == [
        (p["persona_id"], p["label"]) for p in before["personas"]]
    assert [p["weight"] for p in answer["view"]["personas"]] == pytest.approx([p["weight"] for p in before["personas"]])


def test_posted_memories_are_assigned_as_the_champions_predict_assigns_them(api):
    _, service, _ = api
    snapshot = service.snapshot
    events = pl.DataFrame(query(f"select {', '.join(EVENT_SCHEMA)} from fct_events where event_date = ? "
                                "order by person_id, ts", [LAST]),
                          schema=EVENT_SCHEMA, orient="row")
    memories = posted_memories(snapshot, events)
    assigned = assign_to_personas(snapshot.champion, memories)
    predicted = snapshot.champion.model.predict(None, memories.select(INPUT_COLUMNS).to_pandas())
    assert memories.height > 100
    assert assigned["persona_id"].to_list() == predicted["persona_id"].tolist()
    assert assigned["distance"].to_numpy() == pytest.approx(predicted["distance"].to_numpy(), abs=1e-9)


def test_too_many_or_too_large_requests_are_refused_with_413(api):
    base_url, _, _ = api
    person = _person_with_personas(1)
    many = [event("2026-10-04T10:00:00Z", text=f"item {index}") for index in range(MAX_EVENTS_PER_REQUEST + 1)]
    status, answer = call(base_url, "POST", f"/persons/{person}/events", {"events": many})
    assert status == 413 and f"at most {MAX_EVENTS_PER_REQUEST} events per request, got 1001" in answer["detail"]
    # Refused on the declared length alone: the client sends the headers and waits for the answer.
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(base_url).netloc, timeout=30)
    connection.putrequest("POST", f"/persons/{person}/events")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "exceeds the limit" in json.loads(response.read())["detail"]
    connection.close()
    # A chunked body declares no length: it is counted as it streams in.
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(base_url).netloc, timeout=30)
    chunks = (b" " * 65536 for _ in range(MAX_BODY_BYTES // 65536 + 1))
    connection.request("POST", f"/persons/{person}/events", body=chunks, encode_chunked=True,
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    assert response.status == 413 and "exceeds the limit" in json.loads(response.read())["detail"]
    connection.close()


@pytest.mark.parametrize(("body", "status", "field", "message"), [
    ({"events": [event("2026-10-04T10:00:00Z"), event("yesterday at noon")]}, 422, "events[1].timestamp", "datetime"),
    ({"events": [event("2099-01-01T00:00:00Z")]}, 422, "events[0].timestamp", "in the future"),
    ({"events": [event("0001-01-01T00:00:00+01:00")]}, 422, "events[0].timestamp", "out of range"),
    ({"events": [{"timestamp": "2026-10-04T10:00:00Z", "source": "web"}]}, 422, "events[0].action", "Field required"),
    ({"events": [event("2026-10-04T10:00:00Z", source="Web Shop")]}, 422, "events[0].source", "pattern"),
    ({"events": [event("2026-10-04T10:00:00Z", colour="red")]}, 422, "events[0].colour", "Extra inputs"),
    ({"events": []}, 422, "events", "at least 1 item"),
    ({"event": []}, 422, "events", "Field required"),
    (b'{"events": [', 400, "body", "not valid JSON"),
])
def test_bad_input_gets_a_4xx_naming_the_field(api, body, status, field, message):
    base_url, service, _ = api
    person = _person_with_personas(1)
    posted_before = service.health()["persons_with_posted_events"]
    raw = body if isinstance(body, bytes) else None
    answer_status, answer = call(base_url, "POST", f"/persons/{person}/events", None if raw else body, raw=raw)
    assert answer_status == status
    assert any(error["field"] == field and message in error["message"] for error in answer["errors"]), answer
    assert f"{field}: " in answer["detail"]
    assert service.health()["persons_with_posted_events"] == posted_before


def test_the_api_key_guards_every_route_and_reloads_but_not_health(api, monkeypatch):
    _, service, _ = api
    monkeypatch.setenv("PERSONAS_API_KEY", "s3cret")
    person = _person_with_personas(1)
    with serving(create_app(service)) as base_url:
        for path in ("/personas", f"/persons/{person}/personas"):
            assert call(base_url, "GET", path)[0] == 401
            assert call(base_url, "GET", path, headers={"X-API-Key": "wrong"})[0] == 401
            assert call(base_url, "GET", path, headers={"X-API-Key": "s3cr\u00e9t"})[0] == 401  # not a 500
            assert call(base_url, "GET", path, headers={"X-API-Key": "s3cret"})[0] == 200
        status, answer = call(base_url, "POST", f"/persons/{person}/events", {"events": [event("2026-10-04T10:00:00Z")]})
        assert status == 401 and "X-API-Key" in answer["detail"]
        assert call(base_url, "GET", "/health")[0] == 200
        assert call(base_url, "GET", "/health?reload=true")[0] == 401
        assert call(base_url, "GET", "/health?reload=true", headers={"X-API-Key": "s3cret"})[0] == 200


def test_reload_waits_out_a_writers_lock_and_keeps_posted_events(api):
    """A pipeline run holds the warehouse for writing: the reload answers 503, the old snapshot keeps serving."""
    base_url, service, home = api
    person = _person_with_personas(1)
    events = _events_of(query("select evidence_memory_ids from personas where event_date = ? limit 1", [LAST])[0][0],
                        LAST + timedelta(days=2))
    status, posted = call(base_url, "POST", f"/persons/{person}/events", {"events": events})
    assert status == 200 and posted["view"]["includes_posted_events"]
    loaded_at = service.health()["loaded_at"]
    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; connection = duckdb.connect(sys.argv[1]); "
         "print('locked', flush=True); time.sleep(60)", str(warehouse_path(home))],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        status, answer = call(base_url, "GET", "/health?reload=true")
        assert status == 503 and answer["status"] == "stale" and "locked" in answer["detail"]
        assert answer["loaded_at"] == loaded_at
        assert call(base_url, "GET", "/personas")[0] == 200
    finally:
        writer.kill()
        writer.wait()
    status, answer = call(base_url, "GET", "/health?reload=true")
    assert status == 200 and answer["loaded_at"] > loaded_at
    assert call(base_url, "GET", f"/persons/{person}/personas") == (200, posted["view"])


def test_a_changed_warehouse_is_reloaded_in_the_background_once_it_is_quiet(api):
    _, service, home = api
    loaded_at = service.health()["loaded_at"]
    watcher = service.watch(poll_seconds=0.2)
    try:
        stat = warehouse_path(home).stat()
        os.utime(warehouse_path(home), ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert service.health()["sources_changed_since_load"]
        deadline = time.monotonic() + 60
        while service.health()["loaded_at"] == loaded_at:
            assert time.monotonic() < deadline, "no background reload"
            time.sleep(0.2)
        assert not service.health()["sources_changed_since_load"]
    finally:
        service.stop()
        watcher.join(timeout=10)


def test_the_champions_logged_settings_are_read_with_their_declared_types():
    """MLflow logs parameters as text: a float knob with an int default (gap_minutes = 30) comes back as "45.0"."""
    settings = settings_from_params({"gap_minutes": "45.0", "window_days": "21", "recent_share": "0.5"})
    assert (settings.gap_minutes, settings.window_days, settings.recent_share) == (45.0, 21, 0.5)


def test_posted_events_per_person_are_capped_keeping_the_newest(api, monkeypatch):
    """25 posts of 1,000 events grew one person's state without limit (latency 92 -> 857 ms): now capped."""
    base_url, service, _ = api
    monkeypatch.setattr(service, "max_posted_events", 40)
    person = query("select person_id from user_personas where event_date = ? group by 1 order by 1 desc limit 1",
                   [LAST])[0][0]
    kept = []
    for post in range(3):
        events = [event(f"2026-10-04T{10 + post}:{minute:02d}:00Z", text=f"item {post}-{minute}")
                  for minute in range(30)]
        status, answer = call(base_url, "POST", f"/persons/{person}/events", {"events": events})
        assert status == 200 and answer["new_events"] == 30
        kept.append((answer["posted_events_kept"], answer["oldest_posted_events_dropped"]))
    assert kept == [(30, 0), (40, 20), (40, 30)]
    oldest_kept = service._posted[person].events["ts"].min()
    assert oldest_kept.isoformat() == "2026-10-04T11:20:00"  # the 50 oldest went, the 40 newest stayed


def test_a_warehouse_missing_a_table_is_refused_with_its_name_not_a_catalog_error(api, tmp_path):
    from dagster_project.api.snapshot import SnapshotUnavailable, _read_day

    _, _, home = api
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(warehouse_path(home).read_bytes())
    import duckdb

    with duckdb.connect(str(copy)) as connection:
        connection.execute("drop table user_personas")
    with pytest.raises(SnapshotUnavailable, match=r"has no user_personas \(never materialised"):
        _read_day(copy, LAST, 1.0)


def test_a_human_label_is_set_behind_the_key_and_served_beside_the_computed_one(api, monkeypatch):
    base_url, service, _ = api
    persona_id, computed = query("select persona_id, label from personas where event_date = ? "
                                 "order by share desc limit 1", [LAST])[0]
    path, body = f"/personas/{persona_id}/label", {"label": "Weekend tennis crowd", "by": "ann"}
    status, answer = call(base_url, "PUT", path, body)
    assert status == 403 and "PERSONAS_API_KEY" in answer["detail"]  # a server without a key takes no writes

    monkeypatch.setenv("PERSONAS_API_KEY", "s3cret")
    key = {"X-API-Key": "s3cret"}
    with serving(create_app(service)) as keyed_url:
        assert call(keyed_url, "PUT", path, body)[0] == 401
        status, answer = call(keyed_url, "PUT", path, body, headers=key)
        assert status == 200, answer
        assert (answer["persona"]["label"], answer["persona"]["computed_label"], answer["persona"]["label_source"]) == (
            "Weekend tennis crowd", computed, "human")
        _, catalogue = call(keyed_url, "GET", "/personas", headers=key)
        served = {persona["persona_id"]: persona for persona in catalogue["personas"]}
        assert served[persona_id]["label_set_by"] == "ann" and served[persona_id]["label_set_at"]
        assert all(persona["label"] == persona["computed_label"] and persona["label_source"] == "computed"
                   for other, persona in served.items() if other != persona_id)
        assert query("select persona_id, label, set_by from persona_label_overrides") == [
            (persona_id, "Weekend tennis crowd", "ann")]

        assert call(keyed_url, "PUT", "/personas/999999/label", body, headers=key)[0] == 404
        status, answer = call(keyed_url, "PUT", path, {"label": "ask ann@example.com", "by": "ann"}, headers=key)
        assert status == 422 and "email" in answer["detail"]
        status, answer = call(keyed_url, "DELETE", f"{path}?by=ann", headers=key)
        assert status == 200
        assert (answer["persona"]["label"], answer["persona"]["label_source"]) == (computed, "computed")
