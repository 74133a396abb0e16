"""The erasure suppression list and the identity nodes of every raw landing line.

A person who asked to be forgotten must not come back when a source sends their data
again. `main.erasure_suppressions` holds a salted SHA-256 of each of their identity
nodes (`cookie:…`, `customer:…`, `handle:<handle hash>`, `device:…`, `imported:…`, and
`email:<email hash>`), never the identifier itself. A raw line is suppressed when any
node it names is on the list; the nodes are spelled exactly as `int_identity_links`
and `fct_events` spell them, so the list matches what the identity graph stitched.

The list is applied where a line enters the warehouse, the raw load (the first step of
staging), rather than in the dbt staging models: `raw` holds PII in the clear, so a
filter further down would leave a re-sent file's lines of the person in `raw.*`.
"""

import duckdb
import polars as pl

from dagster_project.ingest.landing import LandingEntity
from dagster_project.privacy.pii import imported_person_hash_sql, pii_hash_sql, pii_salt, salted_hash_sql

SUPPRESSIONS_TABLE = "main.erasure_suppressions"


def _node(prefix: str, expr: str) -> str:
    """SQL of an identity node such as `cookie:ck-1`, spelt as dbt spells it (untrimmed); null without an identifier."""
    return f"'{prefix}:' || nullif({expr}, '')"


def _json_field(name: str) -> str:
    """A JSON line's field as staging reads it (`doc->>`); by pattern where the line is not JSON (truncated)."""
    return (f"""coalesce(try(json_extract_string(raw, '$.{name}')), """
            f"""nullif(regexp_extract(raw, '"{name}"\\s*:\\s*"([^"]*)"', 1), ''))""")


_WEB_COOKIE = _json_field("cookie_id")
_WEB_CUSTOMER = _json_field("customer_id")
_SOCIAL_HANDLE = f"ltrim({_json_field('handle')}, '@')"
_CRM_HANDLE = "ltrim(social_handle, '@')"

# Per raw table: the identity nodes a line names, as a SQL list over the raw table's columns.
LINE_NODES: dict[str, str] = {
    "web__events": f"[{_node('cookie', _WEB_COOKIE)}, {_node('customer', _WEB_CUSTOMER)}]",
    "social__engagements": f"['handle:' || {pii_hash_sql(_SOCIAL_HANDLE)}]",
    "crm__customers": f"[{_node('customer', 'customer_id')}, 'handle:' || {pii_hash_sql(_CRM_HANDLE)}, "
                      f"'email:' || {pii_hash_sql('email')}]",
    "crm__orders": f"[{_node('customer', 'customer_id')}]",
    "crm__tickets": f"[{_node('customer', 'customer_id')}]",
    "iot__devices": f"[{_node('device', 'device_id')}, {_node('customer', 'customer_id')}]",
    "iot__readings": f"[{_node('device', 'device_id')}]",
    "import__events": f"['imported:' || source || ':' || {imported_person_hash_sql('person_id')}]",
}


def ensure_suppression_table(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(
        f"create table if not exists {SUPPRESSIONS_TABLE} "
        "(identifier_hash varchar primary key, identifier_type varchar, erased_at timestamp)"
    )


def suppressed_condition(entity_table: str) -> str:
    """SQL true for a raw line of `entity_table` that names a suppressed identity node (bind `$salt`)."""
    return (
        f"list_has_any(list_transform({LINE_NODES[entity_table]}, lambda node: {salted_hash_sql('node')}), "
        f"(select coalesce(list(identifier_hash), []) from {SUPPRESSIONS_TABLE}))"
    )


def has_suppressions(connection: duckdb.DuckDBPyConnection) -> bool:
    exists = connection.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'main' and table_name = 'erasure_suppressions'"
    ).fetchall()[0][0]
    return bool(exists) and connection.execute(f"select count(*) from {SUPPRESSIONS_TABLE}").fetchall()[0][0] > 0


def suppressed_lines(connection: duckdb.DuckDBPyConnection, entity: LandingEntity, lines: pl.DataFrame) -> pl.DataFrame:
    """landing_file and line_no of the lines (raw-table shape) that belong to an erased person."""
    connection.register("landing_lines", lines.to_arrow())
    try:
        return connection.sql(
            f"select landing_file, line_no from landing_lines where {suppressed_condition(entity.table)}",
            params={"salt": pii_salt()},
        ).pl()
    finally:
        connection.unregister("landing_lines")


def drop_suppressed_lines(
    connection: duckdb.DuckDBPyConnection, entity: LandingEntity, lines: pl.DataFrame
) -> tuple[pl.DataFrame, int]:
    """The raw lines without those of erased persons, and how many were dropped.

    Applied at the raw load, where the warehouse first sees a line: a re-sent landing
    file then brings none of an erased person's PII into `raw`, and staging, the identity
    graph and the personas never see them (raw = staged + rejected still holds).
    """
    if lines.is_empty() or not has_suppressions(connection):
        return lines, 0
    dropped = suppressed_lines(connection, entity, lines)
    if dropped.is_empty():
        return lines, 0
    return lines.join(dropped, on=["landing_file", "line_no"], how="anti", maintain_order="left"), dropped.height
