"""dbt's Jinja context for sqlfluff's jinja templater (dbt/.sqlfluff): the project's own vars, no warehouse.

sqlfluff's dbt templater would compile every model through dbt, which runs the introspective queries of
int_resent_records against a built warehouse; the jinja templater lints a fresh checkout. Its dbt builtins
give `var()` a placeholder string, so the models' loops over var lists would loop over letters: `var` here
returns the real values. `execute` is false, as in dbt's parse, so no query is ever attempted.
"""

from pathlib import Path as _Path

import yaml as _yaml

_VARS = _yaml.safe_load((_Path(__file__).resolve().parents[1] / "dbt_project.yml").read_text())["vars"]

execute = False


def var(name, default=None):
    return _VARS.get(name, default)


def env_var(name, default=""):
    return default
