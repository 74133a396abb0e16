"""The HTTP surface of `PersonaService` (FastAPI): its routes, clear 4xx answers, an API key.

Reads want the key when one is set; the one write (a persona's human label) always wants it,
and is refused while the server has none.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dagster_project.api.explorer.routes import explorer_router
from dagster_project.api.schemas import TOO_MANY_EVENTS, HumanLabel, PostedEvents
from dagster_project.api.service import PersonaService, UnknownPerson
from dagster_project.api.snapshot import SnapshotUnavailable
from dagster_project.review.store import ReviewError, UnknownPersona

API_KEY_ENV = "PERSONAS_API_KEY"
# 1000 events of at most ~2.5 kB each: anything larger is refused before it is parsed.
MAX_BODY_BYTES = 4 * 1024 * 1024
RELOAD_RETRY_AFTER_SECONDS = 30


class BodySizeLimit:
    """413 for a body over `max_bytes`: on its declared length before a byte is read, else while it streams in.

    A chunked body declares no length, so the body is read here, up to the limit, and handed
    to the app whole: nothing larger than the limit is ever buffered or parsed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if int(declared) > self.max_bytes:
            await self._refuse(f"request body of {int(declared)} bytes", scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse("request body of more", scope, receive, send)
                return
            more = message.get("more_body", False)
        handed_over = False

        async def replay() -> dict:
            nonlocal handed_over
            if handed_over:
                return await receive()
            handed_over = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, what: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"{what} exceeds the limit of {self.max_bytes} bytes"}, status_code=413)
        await response(scope, receive, send)


def _field(location: tuple) -> str:
    """('body', 'events', 3, 'timestamp') -> 'events[3].timestamp'."""
    parts = location[1:] if location and location[0] in ("body", "path", "query", "header") else location
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """Every problem as 'field: message'; 400 for a body that is not JSON, 413 for too many events, else 422."""
    problems = error.errors()
    kinds = {problem["type"] for problem in problems}
    errors = [
        {"field": "body", "message": f"not valid JSON ({problem['ctx']['error']})"} if problem["type"] == "json_invalid"
        else {"field": _field(tuple(problem["loc"])), "message": problem["msg"]}
        for problem in problems
    ]
    status = 400 if "json_invalid" in kinds else 413 if TOO_MANY_EVENTS in kinds else 422
    return JSONResponse(
        {"detail": "; ".join(f"{item['field']}: {item['message']}" for item in errors), "errors": errors},
        status_code=status,
    )


def create_app(service: PersonaService) -> FastAPI:
    """The app over `service`; when PERSONAS_API_KEY is set, every JSON route but /health wants it as X-API-Key
    (the explorer's pages want the cookie `/key` sets for it)."""
    api_key = os.environ.get(API_KEY_ENV) or None

    def require_api_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if api_key is not None and (x_api_key is None or not hmac.compare_digest(x_api_key.encode(), api_key.encode())):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    def require_write_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if api_key is None:
            raise HTTPException(403, f"writes need an API key: start the server with {API_KEY_ENV} set")
        require_api_key(x_api_key)

    app = FastAPI(
        title="Persona API",
        description="Personas of the champion model's day, read from the warehouse into memory; posted events "
        "update a person's personas in this process only (read-mostly: nothing is written back).",
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _validation_error)
    guarded = APIRouter(dependencies=[Depends(require_api_key)])

    @app.get("/health", summary="Liveness and what is served; ?reload=true (with the API key) reads the warehouse again")
    def health(reload: bool = False, x_api_key: Annotated[str | None, Header()] = None):
        if reload:
            require_api_key(x_api_key)  # a reload reads the warehouse: not for anonymous callers
            try:
                service.reload()
            except SnapshotUnavailable as error:
                return JSONResponse(
                    {**service.health(), "status": "stale", "detail": str(error)},
                    status_code=503, headers={"Retry-After": str(RELOAD_RETRY_AFTER_SECONDS)},
                )
        return service.health()

    @guarded.get("/personas", summary="The persona catalogue: labels, descriptions, evidence, quality")
    def personas():
        return service.catalogue()

    @guarded.get("/persons/{person}/personas", summary="A person's personas: weights, labels, evidence")
    def person_personas(person: str):
        try:
            return service.person_view(person)
        except UnknownPerson as error:
            raise HTTPException(404, str(error)) from error

    @guarded.post("/persons/{person}/events", summary="Assign new events to personas and return the updated view")
    def post_events(person: str, body: PostedEvents):
        try:
            return service.post_events(person, body.events)
        except UnknownPerson as error:
            raise HTTPException(404, str(error)) from error

    def label_write(persona_id: int, label: str | None, by: str) -> dict:
        try:
            return service.set_label(persona_id, label, by)
        except UnknownPersona as error:
            raise HTTPException(404, str(error)) from error
        except ReviewError as error:
            raise HTTPException(422, str(error)) from error
        except SnapshotUnavailable as error:
            raise HTTPException(503, str(error), headers={"Retry-After": str(RELOAD_RETRY_AFTER_SECONDS)}) from error

    @app.put("/personas/{persona_id}/label", dependencies=[Depends(require_write_key)],
             summary="Give a persona id a human label, kept on every later day; its computed label stays beside it")
    def set_label(persona_id: int, body: HumanLabel):
        return label_write(persona_id, body.label, body.by)

    @app.delete("/personas/{persona_id}/label", dependencies=[Depends(require_write_key)],
                summary="Clear a persona id's human label: its computed label shows again")
    def clear_label(persona_id: int, by: Annotated[str, Query(min_length=1, max_length=100)]):
        return label_write(persona_id, None, by)

    app.include_router(guarded)
    app.include_router(explorer_router(service, api_key))  # the persona explorer's pages: /, /personas/{id}, ...
    return app
