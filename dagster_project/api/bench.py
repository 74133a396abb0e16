"""`personas bench-api`: latency of `POST /persons/{id}/events` over real HTTP, as a client sees it.

The server runs as `personas serve` in its own process, so the client's work does not share
its interpreter. Requests go one after the other over one keep-alive connection; each
carries `events_per_request` consecutive real events of the champion's day (a slice of
one or two people's sessions, so a few intents), retimed to a fresh session of a random
person who has personas. The first `WARMUP_REQUESTS` are not counted.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from dagster_project.api.app import API_KEY_ENV
from dagster_project.paths import warehouse_path
from dagster_project.processes import free_port, stop_process
from dagster_project.tracking.registry import PARTITION_DATE_TAG, current_champion
from dagster_project.tracking.store import MlflowStore

WARMUP_REQUESTS = 10
STARTUP_TIMEOUT_SECONDS = 300
SESSION_STEP = timedelta(seconds=90)


def champion_day(home: Path) -> date | None:
    """The champion's partition date in this home's registry, None without a champion or warehouse."""
    if not warehouse_path(home).exists():
        return None
    tracking = MlflowStore()
    tracking.activate()
    champion = current_champion(tracking)
    return date.fromisoformat(champion.tags[PARTITION_DATE_TAG]) if champion else None


def sample_requests(home: Path, day: date, n_requests: int, events_per_request: int, seed: int) -> list[tuple[str, bytes]]:
    """(path, JSON body) per request, drawn from the day's events and the people with personas that day."""
    with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
        events = connection.execute(
            "select source, action, object_id, category, text from fct_events where event_date = ? order by person_id, ts",
            [day],
        ).fetchall()
        persons = [row[0] for row in connection.execute(
            "select distinct person_id from user_personas where event_date = ? order by 1", [day]).fetchall()]
    if len(events) < events_per_request or not persons:
        raise RuntimeError(f"{day} has {len(events)} events and {len(persons)} people with personas: too few to sample")
    rng = np.random.default_rng(seed)
    # Sessions an hour apart, all in the past: staging's rule refuses events from the future.
    first_session = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(hours=n_requests + 1)
    requests = []
    for index in range(n_requests):
        start = int(rng.integers(0, len(events) - events_per_request + 1))
        session = first_session + timedelta(hours=index)
        body = {"events": [
            {"timestamp": (session + step * SESSION_STEP).isoformat() + "Z", "source": source, "action": action,
             "object_id": object_id, "category": category, "text": text}
            for step, (source, action, object_id, category, text) in enumerate(events[start:start + events_per_request])
        ]}
        person = persons[int(rng.integers(0, len(persons)))]
        requests.append((f"/persons/{person}/events", json.dumps(body).encode()))
    return requests


@contextmanager
def api_server(home: Path) -> Iterator[tuple[str, int]]:
    """`personas serve` on a free port in a child process, stopped on exit; yields (host, port) once healthy."""
    host, port = "127.0.0.1", free_port()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster_project.cli", "serve", "--home", str(home), "--host", host, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"`personas serve` did not come up:\n{log.read()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=5):
                        break
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.5)
            yield host, port
        finally:
            stop_process(process)


def benchmark_post_latency(home: Path, n_requests: int = 200, events_per_request: int = 20, seed: int = 0) -> dict:
    """p50/p95/p99 (ms) of the POST, measured by the client from sending the request to reading the whole answer."""
    day = champion_day(home)
    if day is None:
        raise RuntimeError(f"no champion model under {home}: run the pipeline first")
    requests = sample_requests(home, day, WARMUP_REQUESTS + n_requests, events_per_request, seed)
    headers = {"Content-Type": "application/json"}
    if os.environ.get(API_KEY_ENV):
        headers["X-API-Key"] = os.environ[API_KEY_ENV]
    latencies = []
    with api_server(home) as (host, port):
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            for index, (path, body) in enumerate(requests):
                started = time.perf_counter()
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                answer = response.read()
                elapsed_ms = (time.perf_counter() - started) * 1000
                if response.status != 200:
                    raise RuntimeError(f"POST {path} answered {response.status}: {answer[:500].decode(errors='replace')}")
                if index >= WARMUP_REQUESTS:
                    latencies.append(elapsed_ms)
        finally:
            connection.close()
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return {
        "route": "POST /persons/{id}/events",
        "requests": len(latencies),
        "events_per_request": events_per_request,
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
        "mean_ms": round(float(np.mean(latencies)), 2),
        "max_ms": round(float(np.max(latencies)), 2),
        "as_of": day.isoformat(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
