"""Which deployment profile a home runs on, chosen by configuration and never by code edits.

`embedded` (the default) keeps every store inside the home: SQLite for Dagster and MLflow,
one DuckDB file for the warehouse; it needs nothing but Python. `production` moves the
Dagster instance and MLflow tracking onto PostgreSQL (the `scale` extra) and queues launched
runs. The profile is named by `PERSONAS_PROFILE` or, failing that, by `profile.toml` in the
home; connection URLs come from the environment only, so no password lands in a file.
"""

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Template

PROFILE_ENV = "PERSONAS_PROFILE"
PROFILE_FILE = "profile.toml"
DAGSTER_DB_URL_ENV = "PERSONAS_DAGSTER_DB_URL"
MLFLOW_DB_URL_ENV = "PERSONAS_MLFLOW_DB_URL"
ARTIFACT_ROOT_ENV = "PERSONAS_ARTIFACT_ROOT"
DRIVER_SCHEME = "postgresql+psycopg2://"
EMBEDDED, PRODUCTION = "embedded", "production"
PROFILES = (EMBEDDED, PRODUCTION)
PLATFORM_MARK = "# Written by the personas platform"  # a dagster.yaml without it was written by hand: left alone
TEMPLATES = Path(__file__).parent / "templates"


class ProfileError(ValueError):
    """The profile configuration is incomplete or names something unknown."""


@dataclass(frozen=True)
class Profile:
    name: str
    max_concurrent_runs: int = 4
    pool_limit: int = 1  # slots per Dagster pool; the one DuckDB warehouse file allows one writer
    artifact_root: str | None = None  # MLflow artifacts: a shared path or an s3:// URI; None: under the home

    @property
    def is_production(self) -> bool:
        return self.name == PRODUCTION


def _profile_file_settings(home: Path) -> dict:
    path = home / PROFILE_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{path} is not valid TOML: {error}") from error


def active_profile(home: Path) -> Profile:
    """The home's profile: `PERSONAS_PROFILE`, else `profile = ...` in `profile.toml`, else embedded.

    `profile.toml` may hold a `[production]` table with `max_concurrent_runs`, `pool_limit`
    and `artifact_root`; `PERSONAS_ARTIFACT_ROOT` overrides the latter.
    """
    settings = _profile_file_settings(home)
    name = os.environ.get(PROFILE_ENV) or settings.get("profile", EMBEDDED)
    if name not in PROFILES:
        source = PROFILE_ENV if os.environ.get(PROFILE_ENV) else str(home / PROFILE_FILE)
        raise ProfileError(f"unknown profile {name!r} in {source}; expected one of {PROFILES}")
    if name == EMBEDDED:
        return Profile(EMBEDDED)
    table = settings.get(PRODUCTION, {})
    unknown = set(table) - {"max_concurrent_runs", "pool_limit", "artifact_root"}
    if unknown:
        raise ProfileError(f"unknown keys {sorted(unknown)} in [production] of {home / PROFILE_FILE}")
    limits = {key: table.get(key, getattr(Profile, key)) for key in ("max_concurrent_runs", "pool_limit")}
    for key, value in limits.items():
        if not isinstance(value, int) or value < 1:
            raise ProfileError(f"{key} in [production] of {home / PROFILE_FILE} must be a whole number >= 1, "
                               f"got {value!r}")
    return Profile(PRODUCTION, **limits,
                   artifact_root=os.environ.get(ARTIFACT_ROOT_ENV) or table.get("artifact_root"))


def required_url(variable: str) -> str:
    """A PostgreSQL URL the production profile cannot run without.

    SQLAlchemy 2.1 drives a bare `postgresql://` with psycopg 3, whose server-side parameters
    break dagster-postgres (`NOTIFY run_events, $1` is a syntax error), so the URL names psycopg2.
    """
    url = os.environ.get(variable)
    example = "postgresql+psycopg2://user:password@host:5432/db"
    if not url:
        raise ProfileError(f"the production profile needs {variable}, e.g. {example}")
    if not url.startswith(DRIVER_SCHEME):
        raise ProfileError(f"{variable} must start with {DRIVER_SCHEME} (the driver dagster-postgres works with), "
                           f"e.g. {example}; got a URL for {url.split('@')[-1]!r}")
    return url


def dagster_yaml(profile: Profile) -> str:
    """The Dagster instance configuration the profile runs on."""
    if not profile.is_production:
        return (TEMPLATES / "dagster.embedded.yaml").read_text()
    required_url(DAGSTER_DB_URL_ENV)  # fail here, clearly, rather than when Dagster first loads the instance
    return Template((TEMPLATES / "dagster.production.yaml").read_text()).substitute(
        max_concurrent_runs=profile.max_concurrent_runs, pool_limit=profile.pool_limit
    )


def write_dagster_yaml(dagster_home: Path, profile: Profile) -> Path:
    """Write the profile's dagster.yaml unless the current one is it already or was written by hand."""
    path = dagster_home / "dagster.yaml"
    wanted = dagster_yaml(profile)
    current = path.read_text() if path.exists() else None
    if current is None or (current != wanted and current.startswith(PLATFORM_MARK)):
        partial = path.with_name(".dagster.yaml.writing")
        partial.write_text(wanted)
        os.replace(partial, path)  # a Dagster process loading the instance never reads half a file
    return path
