"""The Dagster UI over a materialised home, seen by a headless Chromium.

Generates a small home, materialises it into the home's persisted Dagster instance (as
`personas run` does), serves it with `dagster-webserver` on 127.0.0.1 and checks, in a real
browser, that the asset lineage graph renders and that the `personas` asset page shows its
latest materialisation. Screenshots go to the test's temporary directory, or to
$PERSONAS_SCREENSHOTS when set (`make screenshots` refreshes docs/screenshots/ that way).
"""

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from browser_support import Browser, ensure_chromium, free_port, stop, wait_for_http
from dagster_project.cli import run_partitions
from dagster_project.generator import generate
from pipeline_helpers import using_home

REPO = Path(__file__).resolve().parents[1]
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")
START, LAST = date(2026, 10, 1), date(2026, 10, 2)
# The personas group's lineage shows its assets with their upstream fct_events.
GRAPH_PATH = "/locations/personas/asset-groups/personas/lineage"
PERSONAS_PATH = "/assets/personas"
LATEST_EVENT = re.compile(r"Latest event\s+[^\n]* ago")


@pytest.fixture(scope="module")
def browser():
    reason = ensure_chromium()
    if reason:
        pytest.skip(reason)
    with Browser() as opened:
        yield opened


@pytest.fixture(scope="module")
def ui_url(browser, tmp_path_factory):
    with using_home(tmp_path_factory.mktemp("ui")) as home:
        generate(home, days=2, people=200, events_per_day=800, seed=5, start_date=START, world="easy")
        result = run_partitions(home, START, LAST)
        assert result.success, "build_personas failed in the persisted instance"
        port = free_port()
        env = {**os.environ, "PERSONAS_HOME": str(home), "DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
        log_path = home / "webserver.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [str(WEBSERVER), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_for_http(f"{url}/server_info", 60, server)
            except (TimeoutError, RuntimeError) as error:
                pytest.fail(f"{error}\n{log_path.read_text(errors='replace')[-3000:]}")
            # The UI greets a first visit from 127.0.0.1 with a "Join the Dagster community" dialog
            # (after a 1 s delay) unless its localStorage flag is set: set it for this origin.
            browser.get(f"{url}/server_info")
            browser.execute("localStorage.setItem('communityNux', JSON.stringify('1'));")
            yield url
        finally:
            stop(server, group=True)


def open_page(browser: Browser, url: str, ready, what: str) -> None:
    """Load `url` and wait until `ready(text)` holds for the page's visible text."""
    browser.get(url)
    browser.wait_until(lambda b: ready(b.text()), 45, what)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where screenshots go: a test run never rewrites the tracked docs unless asked to."""
    chosen = os.environ.get("PERSONAS_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def screenshot(browser: Browser, folder: Path, name: str) -> None:
    assert "Join the Dagster community" not in browser.text(), "a dialog covers the page"
    browser.screenshot(folder / name)
    assert (folder / name).stat().st_size > 10_000, f"{name} is too small to show the page"


def test_asset_graph_renders(browser, ui_url, screenshots):
    open_page(browser, ui_url + GRAPH_PATH,
              lambda text: all(name in text for name in ("fct_events", "intent_memories", "personas", "user_personas")),
              "the personas group's lineage graph")
    # The graph's nodes load the latest materialisation of each asset ("Latest event  a minute ago").
    browser.wait_until(lambda b: len(LATEST_EVENT.findall(b.text())) >= 4 and "Loading" not in b.text(), 30,
                       "materialisation status on the graph nodes")
    assert "Materialize all" in browser.text()
    screenshot(browser, screenshots, "asset_graph.png")


def test_personas_asset_page_shows_latest_materialisation(browser, ui_url, screenshots):
    open_page(browser, ui_url + PERSONAS_PATH,
              lambda text: "Latest materialization" in text and LAST.isoformat() in text,
              "the personas asset's latest materialisation")
    text = browser.text()
    assert "Labelled personas per model date" in text  # the asset's description
    assert "latest_n_personas" in text  # materialisation metadata
    screenshot(browser, screenshots, "personas_asset.png")


def test_partitions_start_at_the_homes_first_data_day(browser, ui_url):
    """The home's first data day (2026-10-01) is the first partition: no empty days before the data."""
    open_page(browser, ui_url + PERSONAS_PATH + "?view=partitions",
              lambda text: re.search(r"\d+ [Pp]artitions", text) is not None, "the personas asset's partitions")
    text = browser.text()
    days = (datetime.now(UTC).date() - START).days  # every complete UTC day from the first data day on
    assert re.search(rf"\b{days} [Pp]artitions", text), text[:3000]
