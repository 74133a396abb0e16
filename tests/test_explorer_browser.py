"""The persona explorer of `personas serve`, seen by a headless Chromium.

A copy of the session's generated home (two days, every person-level asset) gets its drift and
champion alias, is served by `personas serve` with an API key on 127.0.0.1, and the browser gives
the key once, then checks the catalogue cards, a persona page's share plot, a person lookup and a
label override set through the review page. Screenshots go to $PERSONAS_SCREENSHOTS when set
(docs/screenshots/explorer-*.png), else to a temporary folder.
"""

import json
import os
import shutil
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetSelection

from browser_support import Browser, serving
from dagster_project.api.explorer.routes import SESSION_COOKIE, session_token
from dagster_project.processes import free_port
from generated_run import LAST, START
from pipeline_helpers import materialize_range, query, using_home

PERSONAS = Path(sys.executable).with_name("personas")
API_KEY = "explorer-test-key"
REVIEWER = "Explorer Test"
HUMAN_LABEL = "Weekend racket crowd"
PAGE_LOADS = 5
# What the generated home leaves out: the drift reviews and the champion alias the server needs.
DRIFT_AND_CHAMPION = AssetSelection.assets("persona_drift", "champion_model")


@pytest.fixture(scope="module")
def served(generated_run, tmp_path_factory):
    """(base URL, home, champion day) of `personas serve` over a copy of the generated home."""
    home = tmp_path_factory.mktemp("explorer") / "home"
    shutil.copytree(generated_run.home, home, symlinks=True)
    with using_home(home):
        assert materialize_range(START, LAST, selection=DRIFT_AND_CHAMPION).success
        port = free_port()
        env = {**os.environ, "PERSONAS_API_KEY": API_KEY}
        url = f"http://127.0.0.1:{port}"
        command = [str(PERSONAS), "serve", "--port", str(port), "--poll-seconds", "3600"]
        with serving(command, home / "serve.log", f"{url}/health", 90, env):
            request = urllib.request.Request(f"{url}/health", headers={"X-API-Key": API_KEY})
            with urllib.request.urlopen(request, timeout=30) as response:
                champion_day = date.fromisoformat(json.loads(response.read())["as_of"])
            yield url, home, champion_day


@pytest.fixture(scope="module")
def explorer(browser, served):
    """The browser past the key page: the first visit of `/` is sent there, and back after the key."""
    url, home, champion_day = served
    browser.get(url + "/")
    browser.wait_until(lambda b: "API key" in b.text(), 20, "the key page")
    assert browser.execute("return location.pathname;") == "/key"
    browser.execute(
        "document.querySelector('input[name=key]').value = arguments[0];"
        "document.querySelector('input[name=by]').value = arguments[1];"
        "document.querySelector('form[action=\"/key\"]').submit();", API_KEY, REVIEWER)
    browser.wait_until(lambda b: b.execute("return location.pathname;") == "/" and "personas" in b.text(), 20,
                       "the catalogue after the key")
    return browser, url, home, champion_day


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    chosen = os.environ.get("PERSONAS_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def screenshot(browser: Browser, folder: Path, name: str) -> None:
    browser.screenshot(folder / name)
    assert (folder / name).stat().st_size > 10_000, f"{name} is too small to show the page"


def median_load_ms(browser: Browser, url: str) -> float:
    """Median over PAGE_LOADS navigations of the page's load time (navigation start to the load event)."""
    durations = []
    for _ in range(PAGE_LOADS):
        browser.get(url)
        durations.append(browser.execute("return performance.getEntriesByType('navigation')[0].duration;"))
    return statistics.median(durations)


def champion_personas(home: Path, day) -> list[tuple]:
    with using_home(home):
        return query("select persona_id, label from personas where event_date = ? order by persona_id", [day])


def test_catalogue_has_a_card_per_champion_persona(explorer, screenshots):
    browser, url, home, champion_day = explorer
    browser.get(url + "/")
    cards = browser.execute("return [...document.querySelectorAll('.persona-card')].map(card => "
                            "[Number(card.dataset.personaId), card.querySelector('a.label').textContent.trim()]);")
    assert sorted(map(tuple, cards)) == champion_personas(home, champion_day)
    header = browser.execute("return document.querySelector('header .champion').textContent;")
    assert f"personas as of {champion_day}" in " ".join(header.split())
    screenshot(browser, screenshots, "explorer-catalogue.png")
    load_ms = median_load_ms(browser, url + "/")
    print(f"\n/ loads in {load_ms:.0f} ms (median of {PAGE_LOADS})")
    assert load_ms < 1000


def test_persona_page_plots_a_point_per_model_date(explorer, screenshots):
    browser, url, home, _ = explorer
    with using_home(home):
        persona_id, days = query("select persona_id, list(event_date order by event_date) from personas "
                                 "group by 1 order by len(list(event_date)) desc, 1 limit 1")[0]
        breached = {row[0] for row in query("select distinct event_date from persona_drift where breached")}
    browser.get(f"{url}/personas/{persona_id}")
    plotted = browser.execute("return [...document.querySelectorAll('svg.share-plot circle.point')]"
                              ".map(point => point.dataset.day);")
    assert plotted == [day.isoformat() for day in days]
    markers = browser.execute("return [...document.querySelectorAll('svg.share-plot .drift-marker')]"
                              ".map(marker => marker.dataset.day);")
    assert markers == sorted(day.isoformat() for day in breached if days[0] <= day <= days[-1])
    screenshot(browser, screenshots, "explorer-persona.png")
    load_ms = median_load_ms(browser, f"{url}/personas/{persona_id}")
    print(f"\n/personas/{persona_id} loads in {load_ms:.0f} ms (median of {PAGE_LOADS})")
    assert load_ms < 1000


def test_person_lookup_by_identifier_shows_weighted_personas(explorer, screenshots):
    browser, url, home, champion_day = explorer
    with using_home(home):
        identifier, person_id = query(
            "select i.identifier, i.person_id from dim_person_identifiers i join user_personas u using (person_id) "
            "where u.event_date = ? and i.identifier like 'cookie:%' group by all having count(*) >= 2 "
            "order by 2 limit 1", [champion_day])[0]
        expected = query("select persona_id, weight from user_personas where event_date = ? and person_id = ? "
                         "order by persona_id", [champion_day, person_id])
    browser.get(url + "/people")
    browser.execute("document.querySelector('input[name=identifier]').value = arguments[0];"
                    "document.querySelector('form[action=\"/people\"]').submit();", identifier)
    browser.wait_until(lambda b: person_id in b.text(), 20, "the person's personas")
    shown = browser.execute("return [...document.querySelectorAll('.person-persona')].map(card => "
                            "[Number(card.dataset.personaId), card.querySelector('.weight').textContent]);")
    assert sorted(map(tuple, shown)) == [(persona_id, f"{weight * 100:.1f}%") for persona_id, weight in expected]
    assert browser.execute("return document.querySelectorAll('table.timeline tr').length;") >= 2
    screenshot(browser, screenshots, "explorer-person.png")


def test_label_override_through_the_review_page_shows_on_the_card(explorer, screenshots):
    browser, url, home, champion_day = explorer
    persona_id = champion_personas(home, champion_day)[0][0]
    browser.get(url + "/review")
    browser.execute(
        "const row = document.getElementById('persona-' + arguments[0]);"
        "row.querySelector('input[name=label]').value = arguments[1];"
        "row.querySelector('button[value=set]').click();", persona_id, HUMAN_LABEL)
    browser.wait_until(lambda b: HUMAN_LABEL in b.text() and b.execute("return location.pathname;") == "/review",
                       30, "the review page with the new label")
    browser.execute("window.scrollTo(0, 0);")  # the page lands on the persona's row; show the drift reviews too
    screenshot(browser, screenshots, "explorer-review.png")
    browser.get(url + "/")
    card = browser.execute(
        "const card = document.querySelector(`.persona-card[data-persona-id=\"${arguments[0]}\"]`);"
        "return [card.querySelector('a.label').textContent.trim(), card.querySelector('.badge.human') !== null];",
        persona_id)
    assert card == [HUMAN_LABEL, True]
    with using_home(home):
        assert query("select label, set_by from persona_label_overrides where persona_id = ?", [persona_id]) == [
            (HUMAN_LABEL, REVIEWER)]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _post(url: str, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Status and headers of a form post, redirects not followed."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers=headers or {})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_the_pages_refuse_writes_without_a_fresh_session_from_this_server(served):
    url, _, _ = served
    label = {"persona_id": "1", "label": "Forged"}
    status, headers = _post(f"{url}/review/label", label)  # no session cookie: sent to the key page
    assert status == 303 and headers["location"].startswith("/key")
    assert _post(f"{url}/key", {"key": "wrong", "by": "Mallory", "next": "/"})[0] == 401
    expired = session_token(API_KEY, int(time.time()) - 9 * 3600)
    status, headers = _post(f"{url}/review/label", label, {"Cookie": f"{SESSION_COOKIE}={expired}"})
    assert status == 303 and headers["location"].startswith("/key")
    status, headers = _post(f"{url}/key", {"key": API_KEY, "by": "Tester", "next": "//evil.example/"})
    assert status == 303 and headers["location"] == "/"  # never redirected off this server
    cookie = headers["set-cookie"].split(";")[0]
    assert _post(f"{url}/review/label", label, {"Cookie": cookie, "Origin": "http://evil.example"})[0] == 403
    request = urllib.request.Request(f"{url}/personas", headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert b"Forged" not in response.read()
