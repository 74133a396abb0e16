"""`personas serve`: the API under uvicorn, with a background reload when the pipeline publishes."""

from pathlib import Path

import uvicorn

from dagster_project.api.app import create_app
from dagster_project.api.service import PersonaService


def serve(home: Path, host: str, port: int, poll_seconds: float) -> None:
    """Load the snapshot (fails fast with a clear message when there is nothing to serve), then serve."""
    service = PersonaService(home)
    snapshot = service.snapshot
    print(f"Serving personas as of {snapshot.champion.as_of} (model version {snapshot.champion.version}, "
          f"{len(snapshot.catalogue)} personas, {len(snapshot.persons)} persons) on http://{host}:{port}",
          flush=True)
    service.watch(poll_seconds)
    try:
        uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
    finally:
        service.stop()
