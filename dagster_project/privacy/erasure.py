"""Right to erasure: `personas forget` removes one person from the warehouse, the landing zone and future runs.

In one DuckDB transaction it
1. resolves the person (a person id, or a raw email, cookie, handle or device) through
   the identity graph to every identity node they own, plus their CRM email hash;
2. puts a salted hash of each node on the suppression list (`main.erasure_suppressions`),
   which the raw load applies to every later load, so reruns and re-sent files never bring
   them back;
3. deletes their raw landing lines and the rejected lines among them, taking those lines
   out of `audit_record_counts` too, so raw = staged + rejected stays exact;
4. deletes every row of every other table, in any schema, that names them in a column of
   `PERSON_COLUMNS` (their `person_id`, one of their memories, identity nodes, cookie,
   customer or device ids, handle or email hashes), and prunes their memories from
   `evidence_memory_ids` lists: marts, staging tables, persona tables and tables added later;
5. records the erasure in `main.erasure_audit`: a hash of the person id, the number of
   identifiers, the time, the rows deleted per table and the days affected.
Then it rewrites the landing files that hold their lines without those lines (the landing
zone is our copy of what the sources sent). The landing sensor sees the rewritten files
as changed, so under automation the affected days rerun by themselves.
"""

import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from dagster_project.ingest.landing import LANDING_ENTITIES, LandingFileError, read_landing_file
from dagster_project.paths import landing_dir, warehouse_path
from dagster_project.privacy.pii import pii_hash_sql, pii_salt, salted_hash_sql
from dagster_project.privacy.suppression import (
    SUPPRESSIONS_TABLE,
    ensure_suppression_table,
    suppressed_condition,
    suppressed_lines,
)
from dagster_project.warehouse import transaction

AUDIT_TABLE = "main.erasure_audit"
# What a raw identifier given on the command line becomes as an identity node (SQL, bind $value, $salt).
IDENTIFIER_NODES = {
    "cookie": "'cookie:' || trim($value)",
    "device": "'device:' || trim($value)",
    "handle": "'handle:' || " + pii_hash_sql("ltrim($value, '@')"),
}
# Columns that name a person's rows in any table (marts, staging tables, persona tables, tables
# added later), and which of the person's values they hold: identity nodes, or the value of one
# kind of node (`cookie:ck-1` -> cookie_id 'ck-1'; handle and email nodes carry the hash).
PERSON_COLUMNS = {
    "person_id": "person",
    "memory_id": "memory",
    "identifier": "node",
    "node": "node",
    "left_node": "node",
    "right_node": "node",
    "cookie_id": "cookie",
    "customer_id": "customer",
    "device_id": "device",
    "handle_hash": "handle",
    "social_handle_hash": "handle",
    "email_hash": "email",
    "person_hash": "imported",
}


class WarehouseBusyError(RuntimeError):
    """The warehouse is open for writing elsewhere (a pipeline run): DuckDB admits one writer."""


class PersonNotFoundError(LookupError):
    """No person in the warehouse owns the given identifier."""


class AmbiguousIdentifierError(LookupError):
    """Several persons own the identifier (two CRM customers sharing an email): erasing one would be a guess."""


@dataclass(frozen=True)
class ErasureReport:
    person_hash: str
    identifiers: int
    erased_at: datetime
    rows_deleted: dict[str, int]
    landing_lines_removed: int
    affected_days: list[date]
    unreadable_landing_files: list[str]


def open_warehouse_for_writing(home: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection, or a clear error when a pipeline run holds the file."""
    if not warehouse_path(home).exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path(home)}: nothing to erase")
    try:
        return duckdb.connect(str(warehouse_path(home)))
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        raise WarehouseBusyError(
            f"{warehouse_path(home)} is open for writing by another process (a pipeline run?); DuckDB admits a "
            "single writer. Run `personas forget` again once the run has finished."
        ) from error


def forget(home: Path, kind: str, value: str) -> ErasureReport:
    """Erase the person that `value` identifies; `kind` is person_id, email, cookie, handle or device."""
    connection = open_warehouse_for_writing(home)
    try:
        person_id = resolve_person(connection, kind, value)
        with transaction(connection):
            report = _erase(connection, person_id)
            landing_lines, unreadable = _suppressed_landing_lines(connection, home)
            report = replace(
                report, landing_lines_removed=sum(len(lines) for lines in landing_lines.values()),
                unreadable_landing_files=unreadable,
                affected_days=sorted(
                    set(report.affected_days) | {date.fromisoformat(path.stem) for path in landing_lines}),
            )
            _record_audit(connection, report)
    finally:
        connection.close()
    # After the commit: should a rewrite fail, the suppression list still keeps the lines out of every load.
    for path, line_numbers in landing_lines.items():
        _rewrite_without(path, line_numbers)
    return report


def resolve_person(connection: duckdb.DuckDBPyConnection, kind: str, value: str) -> str:
    """The stitched person id behind a person id or a raw identifier."""
    if kind == "person_id":
        sql = "select distinct person_id from dim_person_identifiers where person_id = trim($value)"
    elif kind == "email":
        sql = """select distinct i.person_id from dim_customers c
                 join dim_person_identifiers i on i.identifier = 'customer:' || c.customer_id
                 where c.email_hash = """ + pii_hash_sql("$value")
    elif kind in IDENTIFIER_NODES:
        sql = f"select person_id from dim_person_identifiers where identifier = {IDENTIFIER_NODES[kind]}"
    else:
        raise ValueError(f"unknown identifier kind {kind!r}")
    # DuckDB refuses parameters a statement does not use: only the hashed kinds take the salt.
    parameters = {"value": value} | ({"salt": pii_salt()} if "$salt" in sql else {})
    found = sorted(row[0] for row in connection.execute(sql, parameters).fetchall())
    if not found:
        raise PersonNotFoundError(f"no person in the warehouse has {kind} {value!r} (already erased, or never loaded)")
    if len(found) > 1:
        raise AmbiguousIdentifierError(
            f"{len(found)} persons have {kind} {value!r}: {', '.join(found)}; "
            "erase each one with `personas forget --person-id ID`"
        )
    return found[0]


def _erase(connection: duckdb.DuckDBPyConnection, person_id: str) -> ErasureReport:
    salt = pii_salt()
    nodes = [row[0] for row in connection.execute(
        "select identifier from dim_person_identifiers where person_id = ?", [person_id]).fetchall()]
    customer_ids = [node.removeprefix("customer:") for node in nodes if node.startswith("customer:")]
    email_nodes = [row[0] for row in connection.execute(
        "select distinct 'email:' || email_hash from dim_customers where customer_id in (select unnest(?)) "
        "and email_hash is not null", [customer_ids]).fetchall()]
    values = {"person": [person_id], "memory": _memory_ids(connection, person_id), "node": nodes}
    for node in nodes + email_nodes:
        kind, value = node.split(":", 1)
        if kind == "imported":  # imported:<source>:<hash> -> the hash; other ids may hold colons (MAC addresses)
            value = value.rsplit(":", 1)[-1]
        values.setdefault(kind, []).append(value)
    erased_at = datetime.now(UTC).replace(tzinfo=None)
    ensure_suppression_table(connection)
    connection.execute(
        f"insert or ignore into {SUPPRESSIONS_TABLE} select {salted_hash_sql('node')}, split_part(node, ':', 1), $at "
        "from (select unnest($nodes) as node)",
        {"salt": salt, "nodes": nodes + email_nodes, "at": erased_at},
    )
    rows_deleted, raw_days = _delete_raw_lines(connection)
    rows_deleted |= _delete_person_rows(connection, values)
    person_hash = connection.execute(
        f"select {salted_hash_sql('$person')}", {"salt": salt, "person": person_id}).fetchall()[0][0]
    return ErasureReport(
        person_hash=person_hash, identifiers=len(nodes) + len(email_nodes), erased_at=erased_at,
        rows_deleted={table: count for table, count in sorted(rows_deleted.items()) if count},
        landing_lines_removed=0, affected_days=raw_days, unreadable_landing_files=[],
    )


def _record_audit(connection: duckdb.DuckDBPyConnection, report: ErasureReport) -> None:
    """One row per erasure: who (hashed), how many identifiers, when, what was deleted where, which days to rerun."""
    connection.execute(
        f"""create table if not exists {AUDIT_TABLE} (person_hash varchar, identifiers integer, erased_at timestamp,
            rows_deleted json, landing_lines_removed integer, affected_days date[])"""
    )
    connection.execute(
        f"insert into {AUDIT_TABLE} values (?, ?, ?, ?, ?, ?)",
        [report.person_hash, report.identifiers, report.erased_at, json.dumps(report.rows_deleted),
         report.landing_lines_removed, report.affected_days],
    )


def _tables(connection: duckdb.DuckDBPyConnection, schema_filter: str) -> dict[str, set[str]]:
    """Base tables (schema.table) matching the filter, with their column names."""
    rows = connection.execute(
        f"""select c.table_schema || '.' || c.table_name, c.column_name
            from information_schema.columns c join information_schema.tables t using (table_schema, table_name)
            where t.table_type = 'BASE TABLE' and c.table_catalog = current_database() and {schema_filter}"""
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def _delete_raw_lines(connection: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], list[date]]:
    """Delete the suppressed raw lines, their rejected rows, and their share of audit_record_counts."""
    raw_tables = _tables(connection, "c.table_schema = 'raw'")
    main_tables = _tables(connection, "c.table_schema = 'main'")
    connection.execute("create temp table erased_lines (source varchar, entity varchar, event_date date, "
                       "landing_file varchar, line_no bigint, rejected boolean default false)")
    for entity in LANDING_ENTITIES:
        if f"raw.{entity.table}" in raw_tables:
            connection.execute(
                f"""insert into erased_lines (source, entity, event_date, landing_file, line_no)
                    select '{entity.source}', '{entity.entity}', event_date, landing_file, line_no
                    from raw.{entity.table} where {suppressed_condition(entity.table)}""",
                {"salt": pii_salt()},
            )
    rows_deleted = {}
    if "main.rejected_events" in main_tables:
        connection.execute("""update erased_lines set rejected = exists (select 1 from rejected_events r
                where r.landing_file = erased_lines.landing_file and r.line_no = erased_lines.line_no)""")
        if "main.audit_record_counts" in main_tables:
            connection.execute("""
                update audit_record_counts a set raw_lines = a.raw_lines - e.lines, staged = a.staged - e.staged,
                    rejected = a.rejected - e.rejected
                from (select source, entity, event_date, count(*) as lines, count(*) filter (not rejected) as staged,
                             count(*) filter (rejected) as rejected from erased_lines group by all) e
                where a.source = e.source and a.entity = e.entity and a.event_date = e.event_date""")
        rows_deleted["main.rejected_events"] = _count(connection.execute(
            "delete from rejected_events r using erased_lines e "
            "where r.landing_file = e.landing_file and r.line_no = e.line_no"))
    for entity in LANDING_ENTITIES:
        if f"raw.{entity.table}" in raw_tables:
            rows_deleted[f"raw.{entity.table}"] = _count(connection.execute(
                f"delete from raw.{entity.table} r using erased_lines e "
                f"where e.landing_file = r.landing_file and e.line_no = r.line_no"))
    days = [row[0] for row in connection.execute("select distinct event_date from erased_lines order by 1").fetchall()]
    connection.execute("drop table erased_lines")
    return rows_deleted, days


def _quoted(table: str) -> str:
    """`schema.table` as a quoted SQL name: a table added later may have any name."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split(".", 1))


def _memory_ids(connection: duckdb.DuckDBPyConnection, person_id: str) -> list[str]:
    if "main.intent_memories" not in _tables(connection, "c.table_schema = 'main'"):
        return []
    return [row[0] for row in connection.execute(
        "select memory_id from intent_memories where person_id = ?", [person_id]).fetchall()]


def _delete_person_rows(connection: duckdb.DuckDBPyConnection, values: dict[str, list[str]]) -> dict[str, int]:
    """Every table outside `raw` that names the person in a `PERSON_COLUMNS` column; evidence lists are pruned."""
    rows_deleted = {}
    for table, columns in _tables(connection, "c.table_schema <> 'raw'").items():
        if table in (SUPPRESSIONS_TABLE, AUDIT_TABLE):
            continue
        named = sorted(column for column in columns if values.get(PERSON_COLUMNS.get(column)))
        if named:
            rows_deleted[table] = _count(connection.execute(
                f"delete from {_quoted(table)} where "
                + " or ".join(f"{column} in (select unnest(${column}))" for column in named),
                {column: values[PERSON_COLUMNS[column]] for column in named}))
        if "evidence_memory_ids" in columns and values["memory"]:
            rows_deleted[f"{table}.evidence_memory_ids"] = _count(connection.execute(
                f"""update {_quoted(table)}
                    set evidence_memory_ids = list_filter(
                        evidence_memory_ids, lambda m: not list_contains($memory_ids, m))
                    where list_has_any(evidence_memory_ids, $memory_ids)""", {"memory_ids": values["memory"]}))
    return rows_deleted


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    return int(cursor.fetchall()[0][0])


def _suppressed_landing_lines(
    connection: duckdb.DuckDBPyConnection, home: Path
) -> tuple[dict[Path, list[int]], list[str]]:
    """Line numbers of suppressed lines per landing file, and the files the raw load cannot read either."""
    found, unreadable = {}, []
    landing = landing_dir(home)
    for entity in LANDING_ENTITIES:
        for path in sorted((landing / entity.source / entity.entity).glob(f"*.{entity.extension}")):
            try:
                day = date.fromisoformat(path.stem)
            except ValueError:  # not a daily file: the raw load never reads it
                continue
            try:
                lines = read_landing_file(path, entity, day, home)
            except (LandingFileError, OSError):  # a file the raw load refuses too (wrong header, unreadable)
                unreadable.append(str(path.relative_to(home)))
                continue
            dropped = suppressed_lines(connection, entity, lines)["line_no"].to_list()
            if dropped:
                found[path] = dropped
    return found, unreadable


def _rewrite_without(path: Path, line_numbers: list[int]) -> None:
    """The file without the given 1-based physical lines; every other byte stays as it was."""
    erased = {line_no - 1 for line_no in line_numbers}
    physical_lines = path.read_bytes().split(b"\n")
    # Written beside it and renamed over it: the sensor or a crash never sees a half-written file.
    rewritten = path.with_name(f".{path.name}.erasing")
    rewritten.write_bytes(b"\n".join(line for index, line in enumerate(physical_lines) if index not in erased))
    os.replace(rewritten, path)
