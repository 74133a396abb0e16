"""The contracts dbt and Python share agree: PII hashes, source entities, allowed actions.

The dbt side's own checks (column types under `contract: enforced`, the unit tests of the
identity rules and the web action allow-list) run inside every `dbt build` of the pipeline tests.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from dagster_project.dbt_vars import DBT_PROJECT_FILE, dbt_var
from dagster_project.defs.quality.checks import STAGING_TABLES
from dagster_project.ingest.importer import BUILT_IN_SOURCES
from dagster_project.ingest.landing import LANDING_ENTITIES
from dagster_project.privacy.pii import imported_person_hash_sql, pii_hash, pii_salt
from dagster_project.privacy.suppression import LINE_NODES

DBT_DIR = DBT_PROJECT_FILE.parent
EXPECTATIONS_DIR = DBT_DIR.parent / "expectations"
DBT = Path(sys.executable).parent / "dbt"

# Inputs where DuckDB and Python string functions part ways (a tab is not trimmed, a no-break
# space is, 'İ' lower-cases differently), blanks, and plain identifiers.
IDENTIFIERS = ["Ann.Lee@Example.com", "  handle_99 ", "\tTabbed", "\u00a0nbsp\u00a0", "İstanbul", "ÉCOLE", "USER001",
               "", "   "]
# A salt with a quote and a non-ASCII letter: the macro must quote it as SQL, not paste it.
SALT = "it's-a-salt-ü"


def _compiled_macro_sql(tmp_path: Path, select_list: str) -> str:
    """`select <select_list>` compiled by dbt with dbt/macros/pii.sql, in a one-macro project (a quick parse)."""
    project = tmp_path / "pii_project"
    (project / "macros").mkdir(parents=True)
    shutil.copy(DBT_DIR / "macros" / "pii.sql", project / "macros" / "pii.sql")
    (project / "dbt_project.yml").write_text(
        "name: pii_check\nversion: '1.0'\nconfig-version: 2\nprofile: pii_check\nmacro-paths: [macros]\n")
    (project / "profiles.yml").write_text(
        "pii_check:\n  target: memory\n  outputs:\n    memory:\n      type: duckdb\n      path: ':memory:'\n")
    completed = subprocess.run(
        [str(DBT), "compile", "--quiet", "--inline", f"select {select_list}", "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(project / "target"), "--log-path", str(project / "logs")],
        capture_output=True, text=True, check=False, cwd=project,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_python_hashes_every_identifier_as_the_dbt_macros_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONAS_PII_SALT", SALT)
    literals = [f"'{value}'" for value in IDENTIFIERS]  # SQL literals: no identifier holds a quote
    select_list = ", ".join(
        f"{{{{ pii_hash(\"{literal}\") }}}} as h{index}, {{{{ pii_hash_case_kept(\"{literal}\") }}}} as k{index}"
        for index, literal in enumerate(literals)
    )
    compiled = _compiled_macro_sql(tmp_path, select_list)
    assert SALT not in compiled and SALT.replace("'", "''") in compiled  # the salt quoted as a SQL literal
    dbt_row = duckdb.execute(compiled).fetchone()
    dbt_hashes, dbt_case_kept = list(dbt_row[0::2]), list(dbt_row[1::2])

    assert [pii_hash(value) for value in IDENTIFIERS] == dbt_hashes
    python_case_kept = duckdb.execute(
        "select " + ", ".join(imported_person_hash_sql(f"$v{index}") for index in range(len(IDENTIFIERS))),
        {"salt": pii_salt()} | {f"v{index}": value for index, value in enumerate(IDENTIFIERS)},
    ).fetchone()
    assert list(python_case_kept) == dbt_case_kept
    # Not vacuous: blanks hash to null, the rest to distinct hashes, and case matters only to the case-kept hash.
    assert dbt_hashes[-2:] == [None, None] and len(set(dbt_hashes[:-2])) == len(IDENTIFIERS) - 2
    user = IDENTIFIERS.index("USER001")
    assert pii_hash("USER001") == pii_hash("user001") and dbt_case_kept[user] != dbt_hashes[user]


def test_the_source_entities_are_declared_once_and_every_list_agrees():
    source_entities = dbt_var("source_entities")
    sources_yml = yaml.safe_load((DBT_DIR / "models" / "staging" / "_sources.yml").read_text())
    (raw,) = [source for source in sources_yml["sources"] if source["name"] == "raw"]

    assert [table["name"] for table in raw["tables"]] == source_entities  # dbt cannot loop in a YAML file
    assert [entity.table for entity in LANDING_ENTITIES] == source_entities
    assert sorted(LINE_NODES) == sorted(source_entities)
    assert [table.name for table in STAGING_TABLES] == [f"stg_{entity}" for entity in source_entities]
    assert set(dbt_var("event_entities")) < set(source_entities)


def _in_set(expectations: list[dict], column: str) -> dict:
    (found,) = [e["kwargs"] for e in expectations
                if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == column]
    return found


def test_the_gx_suites_name_the_lists_of_the_dbt_vars_and_read_them_from_there(monkeypatch):
    """The suite files hold no copy of a contract list, only its `$PARAMETER` name; loading fills in dbt's vars."""
    from dagster_project.quality import gx_runner

    named = {("audit_record_counts", "source"): "sources", ("stg_web__events", "event_type"): "web_actions",
             ("stg_social__engagements", "action"): "social_actions", ("fct_events", "action"): "built_in_actions"}
    for (suite, column), parameter in named.items():
        as_written = json.loads((EXPECTATIONS_DIR / f"{suite}.json").read_text())["expectations"]
        assert _in_set(as_written, column)["value_set"] == {"$PARAMETER": parameter}
    sources = list(dict.fromkeys(entity.split("__")[0] for entity in dbt_var("source_entities")))
    web, social = dbt_var("web_actions"), dbt_var("social_actions")
    assert _in_set(gx_runner.load_suite_expectations("audit_record_counts"), "source")["value_set"] == sources
    assert _in_set(gx_runner.load_suite_expectations("stg_web__events"), "event_type")["value_set"] == web
    assert _in_set(gx_runner.load_suite_expectations("stg_social__engagements"), "action")["value_set"] == social
    actions = _in_set(gx_runner.load_suite_expectations("fct_events"), "action")
    assert actions["value_set"] == [*web, *social, *dbt_var("record_actions")] == [
        "page_view", "search", "click", "add_to_cart", "like", "share", "comment", "order", "ticket", "reading"]
    assert actions["row_condition"]["parameter"] == dbt_var("built_in_sources")
    assert sorted(dbt_var("built_in_sources")) == list(BUILT_IN_SOURCES)  # the importer refuses these names
    # A changed var changes the gate; a name that is neither a contract list nor a day's value is refused.
    monkeypatch.setattr(gx_runner, "dbt_var", lambda name: ["page_view"] if name == "web_actions" else dbt_var(name))
    assert _in_set(gx_runner.load_suite_expectations("stg_web__events"), "event_type")["value_set"] == ["page_view"]
    with pytest.raises(ValueError, match="unknown [$]PARAMETER 'web_action'"):
        gx_runner._with_contracts({"value_set": {"$PARAMETER": "web_action"}}, gx_runner.contract_parameters(), "x")


def test_every_suite_file_loads_and_a_bad_parameter_fails_at_load(tmp_path, monkeypatch):
    """An unknown `$PARAMETER` name, or one with other keys beside it, fails here rather than in the next gate run."""
    from dagster_project.quality import gx_runner

    suites = sorted(path.stem for path in EXPECTATIONS_DIR.glob("*.json"))
    assert len(suites) >= 13
    for suite in suites:
        assert gx_runner.load_suite_expectations(suite), f"{suite} has no expectations"

    monkeypatch.setattr(gx_runner, "EXPECTATIONS_DIR", tmp_path)
    bad_values = {"unknown": {"$PARAMETER": "web_action"},
                  "beside": {"$PARAMETER": "web_actions", "$PARAMETER.web_actions": ["view"]}}
    for suite, value_set in bad_values.items():
        (tmp_path / f"{suite}.json").write_text(json.dumps({"name": suite, "expectations": [
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "action", "value_set": value_set}}]}))
    with pytest.raises(ValueError, match="unknown.json: unknown [$]PARAMETER 'web_action'"):
        gx_runner.load_suite_expectations("unknown")
    with pytest.raises(ValueError, match=r"beside.json: .*'web_actions'.* must stand alone, .*[$]PARAMETER.web_actions"):
        gx_runner.load_suite_expectations("beside")


def test_an_undeclared_dbt_var_is_a_clear_error():
    with pytest.raises(KeyError, match="not declared"):
        dbt_var("no_such_var")
