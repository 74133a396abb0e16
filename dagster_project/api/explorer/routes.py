"""The persona explorer: server-rendered pages over the served snapshot, for people who do not read Dagster.

`/` the catalogue, `/personas/{id}` one persona or parent, `/people?identifier=` one person,
`/review` the drift reviews and human labels. When the server has an API key, every page wants
it: `/key` checks it once and sets an HttpOnly, SameSite=Strict cookie holding an HMAC of the key
(never the key itself), so a cross-site page can neither read it nor post a form with it. Writes
go through the same code as the API and `personas label|review` (`PersonaService.set_label`,
`PersonaService.decide_review` -> review/actions.py), and are refused while the server has no key.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from dagster_project.api.explorer.history import HISTORY_DAYS, History, read_history, read_person_personas
from dagster_project.api.explorer.svg import share_plot
from dagster_project.api.service import PersonaService, UnknownPerson
from dagster_project.api.snapshot import Snapshot, SnapshotUnavailable
from dagster_project.review.store import APPROVED, REJECTED, ReviewError, UnknownPersona

SESSION_COOKIE = "personas_explorer"
REVIEWER_COOKIE = "personas_reviewer"
SESSION_HOURS = 8
MAX_FORM_BYTES = 8 * 1024
EVIDENCE_ON_CARDS = 3
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("dagster_project.api.explorer", "templates"),
    autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
)
TEMPLATES.filters["percent"] = lambda value, digits=1: "–" if value is None else f"{value * 100:.{digits}f}%"
TEMPLATES.filters["moment"] = lambda value: "" if value is None else str(value)[:16].replace("T", " ")
TEMPLATES.filters["number"] = lambda value, digits=2: "–" if value is None else f"{value:.{digits}f}"


class HistoryCache:
    """The history of the snapshot being served, read again whenever the service swaps in a new snapshot."""

    def __init__(self, service: PersonaService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._for: Snapshot | None = None
        self._history: History | None = None

    def get(self, snapshot: Snapshot) -> History:
        with self._lock:
            if self._for is not snapshot:
                self._history = self.service.read_warehouse(lambda c: read_history(c, snapshot.champion.as_of))
                self._for = snapshot
            return self._history


def session_token(api_key: str, issued: int) -> str:
    """What the cookie holds: its issue time and a MAC of it under the key, useless as the key (X-API-Key)
    itself, and refused once `SESSION_HOURS` old, so a copied cookie does not outlive its session."""
    mac = hmac.new(api_key.encode(), f"personas explorer session {issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{mac}"


def valid_session(api_key: str, cookie: str | None, now: float) -> bool:
    issued = (cookie or "").partition(".")[0]
    if not issued.isdigit() or not 0 <= now - int(issued) <= SESSION_HOURS * 3600:
        return False
    return _same(cookie, session_token(api_key, int(issued)))


def _same(given: str | None, expected: str) -> bool:
    """Constant-time comparison that also takes non-ASCII text (which `hmac.compare_digest` refuses as str)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this server, else `default`: a form never redirects elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return default
    return target


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the only kind these pages post) as single values."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"form of {len(body)} bytes exceeds {MAX_FORM_BYTES}")
    return {name: values[-1] for name, values in parse_qs(body.decode(errors="replace")).items()}


def explorer_router(service: PersonaService, api_key: str | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    histories = HistoryCache(service)
    key_required = api_key is not None

    def signed_in(request: Request) -> bool:
        return not key_required or valid_session(api_key, request.cookies.get(SESSION_COOKIE), time.time())

    def page(request: Request, template: str, build: Callable[[Snapshot, History], dict] = lambda *_: {}
             ) -> HTMLResponse:
        """`template` over `build(snapshot, history)` (whose `status_code` and `template`, if given, win), or a
        redirect to the key page while the server wants a key this browser has not given."""
        if not signed_in(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/key?next={quote(target)}", status_code=303)
        snapshot = service.snapshot
        try:
            history = histories.get(snapshot)
            values = build(snapshot, history)
        except SnapshotUnavailable as error:
            template, history, values = "message.html", None, {
                "title": "Warehouse busy", "message": str(error), "status_code": 503}
        status_code, template = values.pop("status_code", 200), values.pop("template", template)
        html = TEMPLATES.get_template(template).render(
            snapshot=snapshot, history=history, key_required=key_required, **values)
        return HTMLResponse(html, status_code=status_code)

    def write_refusal(request: Request) -> str | None:
        """Why a write is refused (no key on the server, no key in this browser, a form from another site)."""
        if not key_required:
            return "writes need an API key: start the server with PERSONAS_API_KEY set"
        if not signed_in(request):
            return "give the API key first (/key)"
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return f"a form posted from {origin} is not this server's"
        return None

    def reviewer(request: Request) -> str:
        return request.cookies.get(REVIEWER_COOKIE) or "explorer"

    @router.get("/", response_class=HTMLResponse)
    def catalogue(request: Request):
        return page(request, "catalogue.html", lambda snapshot, history: {
            "personas": {row["persona_id"]: row for row in snapshot.catalogue}, "evidence_on_cards": EVIDENCE_ON_CARDS})

    @router.get("/personas/{persona_id}", response_class=HTMLResponse)
    def persona(request: Request, persona_id: int):
        def build(snapshot: Snapshot, history: History) -> dict:
            served = next((row for row in snapshot.catalogue if row["persona_id"] == persona_id), None)
            parent = next((row for row in history.parents if row["persona_id"] == persona_id), None)
            points = history.share_points(persona_id)
            if served is None and parent is None and not points:
                since = snapshot.champion.as_of - timedelta(days=HISTORY_DAYS)
                return {"template": "message.html", "status_code": 404, "title": "Unknown persona",
                        "message": f"no persona or parent has the id {persona_id} on a model date since {since}"}
            return {
                "persona_id": persona_id, "persona": served, "parent": parent, "points": points,
                "plot": share_plot(points, history.breach_days, snapshot.champion.as_of) if points else None,
                "labels": {row["persona_id"]: row["label"] for row in (*snapshot.catalogue, *history.parents)},
                "last_seen": history.last_seen(persona_id), "lineage": history.lineage_of(persona_id),
            }

        return page(request, "persona.html", build)

    @router.get("/people", response_class=HTMLResponse)
    def people(request: Request, identifier: str = ""):
        def build(snapshot: Snapshot, history: History) -> dict:
            values = {"identifier": identifier, "view": None, "timeline": [], "error": None}
            if not identifier.strip():
                return values
            try:
                view = service.person_view(identifier.strip())
            except UnknownPerson as error:
                return {**values, "error": str(error), "status_code": 404}
            rows = service.read_warehouse(lambda c: read_person_personas(c, view["person_id"], history.as_of))
            return {**values, "view": view, "timeline": history.person_timeline(rows)}

        return page(request, "people.html", build)

    def review_page(request: Request, status_code: int = 200, error: str | None = None) -> HTMLResponse:
        return page(request, "review.html", lambda snapshot, history: {
            "status_code": status_code, "error": error, "reviewer": reviewer(request),
            "refusal": write_refusal(request), "personas": snapshot.catalogue})

    @router.get("/review", response_class=HTMLResponse)
    def review(request: Request):
        return review_page(request)

    async def write(request: Request, action: Callable[[dict[str, str]], object]) -> HTMLResponse:
        """Run `action(form)` in a worker thread; back to the page it came from, or the review page with why not."""
        refusal = write_refusal(request)
        if refusal:
            return await run_in_threadpool(review_page, request, 403, refusal)
        form = await _form(request)
        try:
            await run_in_threadpool(action, form)
        except UnknownPersona as error:
            return await run_in_threadpool(review_page, request, 404, str(error))
        except (ReviewError, ValueError) as error:
            return await run_in_threadpool(review_page, request, 422, str(error))
        except SnapshotUnavailable as error:
            return await run_in_threadpool(review_page, request, 503, str(error))
        return RedirectResponse(_local_path(form.get("next"), "/review"), status_code=303)

    @router.post("/review/label", response_class=HTMLResponse)
    async def label(request: Request):
        def apply(form: dict[str, str]) -> None:
            persona_id = int(form.get("persona_id", ""))
            text = form.get("label", "").strip() if form.get("action") != "clear" else None
            if text == "":
                raise ValueError(f"type a label for persona {persona_id}, or clear its human label")
            service.set_label(persona_id, text, reviewer(request))
        return await write(request, apply)

    @router.post("/review/decision", response_class=HTMLResponse)
    async def decision(request: Request):
        def apply(form: dict[str, str]) -> None:
            status = form.get("status")
            if status not in (APPROVED, REJECTED):
                raise ValueError(f"a decision is {APPROVED!r} or {REJECTED!r}, got {status!r}")
            service.decide_review(date.fromisoformat(form.get("day", "")), status, reviewer(request))
        return await write(request, apply)

    @router.get("/key", response_class=HTMLResponse)
    def key_page(request: Request, next: str = "/"):
        return HTMLResponse(TEMPLATES.get_template("key.html").render(
            next=_local_path(next), error=None, key_required=key_required, signed_in=signed_in(request),
            reviewer=reviewer(request), history=None, session_hours=SESSION_HOURS))

    @router.post("/key", response_class=HTMLResponse)
    async def give_key(request: Request):
        form = await _form(request)
        target, name = _local_path(form.get("next")), " ".join(form.get("by", "").split())[:100]
        key_given = api_key is not None and _same(form.get("key"), api_key)
        if not key_given or not name:
            error = ("this server has no API key: reading needs none, and writes are refused" if api_key is None
                     else "wrong API key" if not key_given
                     else "type your name: it is recorded with each label and decision")
            return HTMLResponse(TEMPLATES.get_template("key.html").render(
                next=target, error=error, key_required=key_required, signed_in=signed_in(request),
                reviewer=name, history=None, session_hours=SESSION_HOURS), status_code=401 if api_key else 403)
        response = RedirectResponse(target, status_code=303)
        for cookie, value in ((SESSION_COOKIE, session_token(api_key, int(time.time()))), (REVIEWER_COOKIE, name)):
            response.set_cookie(cookie, value, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    @router.post("/key/forget", response_class=HTMLResponse)
    def forget_key():
        response = RedirectResponse("/key", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie(REVIEWER_COOKIE)
        return response

    return router
