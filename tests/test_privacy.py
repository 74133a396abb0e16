"""Right to erasure end to end: forget one person, rerun their days with the original files re-sent, scan everything."""

import hashlib
import json
import re
import shutil
import subprocess
import sys

import duckdb
import polars as pl
import pytest

from dagster_project.cli import main
from dagster_project.paths import landing_dir, warehouse_path
from dagster_project.privacy.erasure import WarehouseBusyError, open_warehouse_for_writing, resolve_person
from dagster_project.privacy.pii import pii_salt
from generated_run import LAST, PERSON_LEVEL_ASSETS, START
from pipeline_helpers import materialize_range, query, using_home


def _salted(value: str) -> str:
    return hashlib.sha256((pii_salt() + value).encode()).hexdigest()


def _needles(home, person_key: str, person_id: str) -> list[str]:
    """Strings that betray the person: their raw identifiers and phone, the hashes the warehouse keeps, the person id.

    (Not the IP: a line that names none of the person's identifiers, such as a web line
    without its cookie id, cannot be attributed to them; docs/privacy.md, Not covered.)
    """
    person = pl.read_parquet(home / "truth" / "people.parquet").filter(pl.col("person_key") == person_key)
    email, handle = person["email"].item(), person["handle"].item().lstrip("@")
    identifiers = pl.read_parquet(home / "truth" / "identifiers.parquet").filter(pl.col("person_key") == person_key)
    return [person_id, email, handle, _salted(email.lower()), _salted(handle.lower()), person["phone"].item(),
            *identifiers["id_value"].to_list()]


def _hits(needles: list[str]) -> dict[str, int]:
    """Rows of every table and view, in every schema of the warehouse, that contain any needle."""
    pattern = "|".join(re.escape(needle) for needle in needles)
    tables = query(
        "select table_schema, table_name from information_schema.tables where table_catalog = current_database()")
    counts = {
        f"{schema}.{table}": query(
            f'select count(*) from {schema}."{table}" as t where regexp_matches(t::varchar, ?)', [pattern])[0][0]
        for schema, table in tables
    }
    return {table: count for table, count in counts.items() if count}


def _landing_hits(home, needles: list[str]) -> list[str]:
    return [str(path) for path in landing_dir(home).rglob("*.*")
            if any(needle.encode() in path.read_bytes() for needle in needles)]


UNBALANCED_SQL = """
select source, entity, event_date from audit_record_counts where raw_lines <> staged + rejected
union all  -- and the audit counts every raw line there is
select 'all', 'all', null where (select sum(raw_lines) from audit_record_counts) <>
    (select sum(lines) from (""" + " union all ".join(
    f"select count(*) as lines from raw.{table}" for table in (
        "web__events", "social__engagements", "crm__customers", "crm__orders", "crm__tickets", "iot__devices",
        "iot__readings", "import__events")) + "))"


@pytest.fixture(scope="module")
def erased(generated_run, tmp_path_factory):
    """A copy of the generated home after forgetting, by email, its busiest customer with a handle and a device.

    A copy, so the shared home stays as generated for the other modules, whichever order they run in.
    """
    copied = tmp_path_factory.mktemp("erasure") / "home"
    shutil.copytree(generated_run.home, copied, symlinks=True)
    with using_home(copied) as home:
        identifiers = pl.read_parquet(home / "truth" / "identifiers.parquet")
        records = pl.read_parquet(home / "truth" / "records.parquet")
        complete = identifiers.group_by("person_key").agg(pl.col("id_type").n_unique() == 4).filter("id_type")
        person_key = records.join(complete, on="person_key")["person_key"].value_counts(sort=True)["person_key"][0]
        person = pl.read_parquet(home / "truth" / "people.parquet").filter(pl.col("person_key") == person_key)
        person_id = query("select person_id from dim_person_identifiers where identifier = ?",
                          ["customer:" + person["customer_id"].item()])[0][0]
        needles = _needles(home, person_key, person_id)
        own = identifiers.filter(pl.col("person_key") == person_key)
        given = {
            "person_id": person_id, "email": person["email"].item(),
            **{kind: own.filter(pl.col("id_type") == kind)["id_value"][0] for kind in ("cookie", "device", "handle")},
        }
        with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
            resolved = {kind: resolve_person(connection, kind, value) for kind, value in given.items()}
        before = {"tables": _hits(needles), "landing": _landing_hits(home, needles),
                  "memories": query("select count(*) from intent_memories where person_id = ?", [person_id])[0][0]}
        originals = tmp_path_factory.mktemp("original-landing")
        shutil.copytree(landing_dir(home), originals, dirs_exist_ok=True)
        assert main(["forget", "--email", person["email"].item().upper()]) == 0
        after_forget = {"tables": _hits(needles), "landing": _landing_hits(home, needles)}
        unbalanced_after_forget = query(UNBALANCED_SQL)
        # The source sends the same files again, and the days rerun: nothing of the person may come back.
        shutil.copytree(originals, landing_dir(home), dirs_exist_ok=True)
        rerun = materialize_range(START, LAST, selection=PERSON_LEVEL_ASSETS)
        yield {"home": home, "person_id": person_id, "needles": needles, "before": before, "resolved": resolved,
               "after_forget": after_forget, "unbalanced_after_forget": unbalanced_after_forget, "rerun": rerun}


def test_the_person_is_everywhere_before_the_erasure(erased):
    before = erased["before"]
    assert before["memories"] > 0
    assert {"raw.crm__customers", "raw.web__events", "main.fct_events", "main.dim_person_identifiers",
            "main.dim_customers", "main.intent_memories", "main.user_personas"} <= set(before["tables"])
    assert before["landing"]


def test_every_kind_of_identifier_finds_the_same_person(erased):
    kinds = ("person_id", "email", "cookie", "device", "handle")
    assert erased["resolved"] == dict.fromkeys(kinds, erased["person_id"])


def test_forget_leaves_no_row_and_no_landing_line_of_the_person(erased):
    assert erased["after_forget"] == {"tables": {}, "landing": []}


def test_rerunning_with_the_original_files_resent_brings_nothing_back(erased):
    assert _hits(erased["needles"]) == {}
    dropped = sum(materialization.metadata["erased_person_lines_dropped"].value  # each table's own count per day
                  for materialization in erased["rerun"].asset_materializations_for_node("raw_landing_lines"))
    assert dropped == query("select landing_lines_removed from erasure_audit")[0][0] > 0
    assert query("select count(*) from intent_memories")[0][0] > 0


def test_the_erasure_is_audited_by_hash(erased):
    rows = query("select person_hash, identifiers, rows_deleted from erasure_audit")
    assert len(rows) == 1
    person_hash, identifiers, rows_deleted = rows[0]
    assert person_hash == _salted(erased["person_id"])
    assert identifiers >= 5  # a cookie, the customer, the handle, a device and the email at least
    deleted = json.loads(rows_deleted)
    assert deleted["main.fct_events"] > 0 and deleted["raw.crm__customers"] >= 1 and deleted["main.intent_memories"] > 0
    suppressed = query("select identifier_type, count(*) from erasure_suppressions group by 1")
    assert dict(suppressed).keys() >= {"cookie", "customer", "handle", "device", "email"}


def test_every_raw_line_is_still_staged_or_rejected(erased):
    assert erased["unbalanced_after_forget"] == []
    assert query(UNBALANCED_SQL) == []
    (reconciliation,) = [evaluation for evaluation in erased["rerun"].get_asset_check_evaluations()
                         if evaluation.check_name == "assert_every_raw_line_accounted_for"]
    assert reconciliation.passed


def test_forget_refuses_to_run_while_a_run_writes_the_warehouse(erased):
    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; connection = duckdb.connect(sys.argv[1]); print(flush=True); "
         "time.sleep(60)", str(warehouse_path(erased["home"]))], stdout=subprocess.PIPE)
    try:
        writer.stdout.readline()  # the other process holds the file now
        with pytest.raises(WarehouseBusyError, match="single writer"):
            open_warehouse_for_writing(erased["home"])
    finally:
        writer.kill()
        writer.wait()
