"""The Dagster UI over a materialised home, seen by a headless Chromium.

Generates a small home, materialises its two days in one ranged run into the home's persisted
Dagster instance (as `personas run` does), serves it with `dagster-webserver` on 127.0.0.1 and
checks, in a real browser, that the asset lineage graph renders with its checks passed, that each
day's materialisation of `personas` and `intent_memories` shows that day's own values, that each
gated day of a Great Expectations gate shows Passed, and that partitions start at the first data
day. Screenshots go to the test's temporary directory, or to $PERSONAS_SCREENSHOTS when set
(`make screenshots` refreshes docs/screenshots/ that way).
"""

import os
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from browser_support import Browser, serving
from dagster_project.cli import run_partitions
from dagster_project.generator import generate
from dagster_project.processes import free_port
from pipeline_helpers import query, using_home

REPO = Path(__file__).resolve().parents[1]
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")
START, LAST = date(2026, 10, 1), date(2026, 10, 2)
# The personas group's lineage shows its assets with their upstream fct_events.
GRAPH_PATH = "/locations/personas/asset-groups/personas/lineage"
PERSONAS_PATH = "/assets/personas"
LATEST_EVENT = re.compile(r"Latest event\s+[^\n]* ago")
CHECKS_PASSED = re.compile(r"Asset checks\s+1 / 1 Passed")
ROW_COUNT = re.compile(r"dagster/row_count\s+([\d,]+)")


@pytest.fixture(scope="module")
def ui_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ui")


@pytest.fixture(scope="module")
def ui_url(browser, ui_home):
    with using_home(ui_home) as home:
        generate(home, days=2, people=200, events_per_day=800, seed=5, start_date=START, world="easy")
        result = run_partitions(home, START, LAST)
        assert result.success, "build_personas failed in the persisted instance"
        port = free_port()
        env = {**os.environ, "PERSONAS_HOME": str(home), "DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
        url = f"http://127.0.0.1:{port}"
        command = [str(WEBSERVER), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
        with serving(command, home / "webserver.log", f"{url}/server_info", 60, env, cwd=REPO):
            # The UI greets a first visit from 127.0.0.1 with a "Join the Dagster community" dialog
            # (after a 1 s delay) unless its localStorage flag is set: set it for this origin.
            browser.get(f"{url}/server_info")
            browser.execute("localStorage.setItem('communityNux', JSON.stringify('1'));")
            yield url


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
    # intent_memories, personas and user_personas: each gate passed on every day, none shown skipped
    browser.wait_until(lambda b: len(CHECKS_PASSED.findall(b.text())) == 3, 30, "the gates' status on the graph nodes")
    screenshot(browser, screenshots, "asset_graph.png")


def test_personas_asset_page_shows_latest_materialisation(browser, ui_url, screenshots):
    open_page(browser, ui_url + PERSONAS_PATH,
              lambda text: "Latest materialization" in text and LAST.isoformat() in text,
              "the personas asset's latest materialisation")
    text = browser.text()
    assert "Labelled personas per model date" in text  # the asset's description
    assert "n_personas" in text and "model_version" in text  # the day's materialisation metadata
    screenshot(browser, screenshots, "personas_asset.png")


def test_partitions_start_at_the_homes_first_data_day(browser, ui_url):
    """The home's first data day (2026-10-01) is the first partition: no empty days before the data."""
    open_page(browser, ui_url + PERSONAS_PATH + "?view=partitions",
              lambda text: re.search(r"\d+ [Pp]artitions", text) is not None, "the personas asset's partitions")
    text = browser.text()
    days = (datetime.now(UTC).date() - START).days  # every complete UTC day from the first data day on
    assert re.search(rf"\b{days} [Pp]artitions", text), text[:3000]


def day_metadata_text(browser: Browser, url: str, asset: str, day: date) -> str:
    """The metadata of the day's materialisation as the asset's partition page shows it."""
    open_page(browser, f"{url}/assets/{asset}?view=partitions&partition={day}",
              lambda text: "Latest materialization" in text and ROW_COUNT.search(text) is not None,
              f"{asset}'s materialisation of {day}")
    text = browser.text()
    return text[text.index("Metadata"):text.index("Tags") if "Tags" in text else None]


@pytest.mark.parametrize("asset", ["personas", "intent_memories"])
def test_each_day_shows_its_own_metadata(browser, ui_url, ui_home, asset, screenshots):
    """One ranged run built both days, yet each day's materialisation carries that day's own values."""
    shown = {day: day_metadata_text(browser, ui_url, asset, day) for day in (START, LAST)}
    assert shown[START] != shown[LAST]
    with using_home(ui_home):
        counts = dict(query(f"select event_date, count(*) from {asset} group by all"))
    for day, text in shown.items():
        assert int(ROW_COUNT.search(text).group(1).replace(",", "")) == counts[day], (asset, day)
    if asset == "personas":
        screenshot(browser, screenshots, "personas_partition.png")


def test_each_gated_day_shows_passed(browser, ui_url, screenshots):
    """The Great Expectations gate of fct_events has a verdict per day: both Passed, none Skipped."""
    open_page(browser, ui_url + "/assets/fct_events?view=checks&checkDetail=gx_fct_events",
              lambda text: "Great Expectations suite" in text and "Partitions" in text, "the gx_fct_events check")
    browser.execute("""const tabs = [...document.querySelectorAll('button, a, [role=tab]')]
                         .filter(element => element.innerText.trim() === 'Partitions');
                       tabs[tabs.length - 1].click();""")
    browser.wait_until(lambda b: "Passed (" in b.text(), 30, "the check's partition statuses")
    text = browser.text()
    assert "Passed (2)" in text and "Skipped (0)" in text and "Failed (0)" in text, text[-1500:]
    screenshot(browser, screenshots, "gx_check_partitions.png")
