"""Every piece of state lives under one root, `PERSONAS_HOME`, so two homes never interfere."""

import json
import os
from datetime import date
from pathlib import Path

from dagster_project.deploy import active_profile, write_dagster_yaml

DEFAULT_HOME = ".personas"


def personas_home() -> Path:
    """The absolute home; relative values are resolved once so dbt's working directory cannot shift it."""
    return Path(os.environ.get("PERSONAS_HOME", DEFAULT_HOME)).resolve()


def landing_dir(home: Path) -> Path:
    return home / "landing"


def truth_dir(home: Path) -> Path:
    return home / "truth"


def warehouse_path(home: Path) -> Path:
    return home / "warehouse.duckdb"


def dagster_home(home: Path) -> Path:
    return home / "dagster"


def mlflow_dir(home: Path) -> Path:
    return home / "mlflow"


def logs_dir(home: Path) -> Path:
    return home / "logs"


FIRST_DATA_DAY_FILE = "first_data_day.json"


def recorded_first_data_day(home: Path) -> date | None:
    """The earliest day `generate` or `import` ever landed in this home, None before any did."""
    path = home / FIRST_DATA_DAY_FILE
    return date.fromisoformat(json.loads(path.read_text())["first_data_day"]) if path.exists() else None


def record_first_data_day(home: Path, day: date) -> date:
    """Move the home's first data day back to `day` if it is earlier (never forward); the day now recorded.

    The daily partitions start there (`partitions.first_partition_day`), so landing older
    data is all it takes to make its days runnable.
    """
    recorded = recorded_first_data_day(home)
    if recorded is not None and recorded <= day:
        return recorded
    home.mkdir(parents=True, exist_ok=True)
    partial = home / f".{FIRST_DATA_DAY_FILE}.writing"
    partial.write_text(json.dumps({"first_data_day": day.isoformat()}) + "\n")
    os.replace(partial, home / FIRST_DATA_DAY_FILE)  # a definitions load never reads half a file
    return day


def activate_home(home: Path | None = None) -> Path:
    """Point this process's Dagster, dbt and MLflow at one home, creating its folders: what every command
    does first (`commands.home_of`). Importing the code location does none of it.

    dbt reads these variables from the environment of its subprocess, so they are set
    in `os.environ` rather than passed around. (Dagster's SQLite event log is lightened by the
    storage the home's dagster.yaml names, in every process that loads the instance.)
    """
    home = (home or personas_home()).resolve()
    for folder in (home, landing_dir(home), dagster_home(home), mlflow_dir(home)):
        folder.mkdir(parents=True, exist_ok=True)
    write_dagster_yaml(dagster_home(home), active_profile(home))  # the embedded or production instance
    os.environ["PERSONAS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_home(home))
    os.environ["PERSONAS_WAREHOUSE"] = str(warehouse_path(home))
    return home
