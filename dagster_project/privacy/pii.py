"""Salted hashing of identifiers: the one Python definition, the twin of dbt/macros/pii.sql.

The warehouse stores an identifier that may be PII (a handle, an email, an imported person id)
only as `sha256(salt || value)`, computed by dbt in staging. Python needs the same hashes to find
a person by a raw identifier (the API, `personas forget`), to put identity nodes on the erasure
suppression list, and to hash rejected import rows. It computes them with the macros' SQL, run by
DuckDB even for a single value: DuckDB's trim() and lower() are not str.strip() and str.lower()
(trim() keeps a tab and drops a no-break space; lower('İ') is 'i'), so only the same engine hashes
every input alike. tests/test_dbt_contracts.py compares this module with the compiled macros.
"""

import os
import threading
from functools import cache

import duckdb

# The demo salt; dbt logs a warning whenever it falls back to it (macro pii_salt).
DEFAULT_PII_SALT = "personas-dev-salt-change-me"


def pii_salt() -> str:
    """The salt dbt's `pii_hash` uses (PERSONAS_PII_SALT, else the demo default)."""
    return os.environ.get("PERSONAS_PII_SALT") or DEFAULT_PII_SALT


def pii_hash_sql(expr: str) -> str:
    """SQL of dbt's `pii_hash` over `expr` (bind `$salt`): null when blank, else the hash of it trimmed, lower-cased."""
    return f"case when nullif(trim({expr}), '') is null then null else sha256($salt || lower(trim({expr}))) end"


def imported_person_hash_sql(expr: str) -> str:
    """SQL of dbt's `pii_hash_case_kept` (bind `$salt`): an imported log's person id, trimmed but case kept."""
    return f"case when nullif(trim({expr}), '') is not null then sha256($salt || trim({expr})) end"


def salted_hash_sql(expr: str) -> str:
    """SQL of the salted hash of `expr` as it is (bind `$salt`): identity nodes on the suppression list, person ids."""
    return f"sha256($salt || {expr})"


_connection_lock = threading.Lock()


@cache
def _hashing_connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def pii_hash(value: str) -> str | None:
    """One raw identifier hashed as staging hashes it (`pii_hash`): ~0.4 ms on a shared in-memory DuckDB."""
    with _connection_lock:
        cursor = _hashing_connection().cursor()  # one cursor per call: callers may be API threads
    with cursor:
        return cursor.execute(f"select {pii_hash_sql('$value')}", {"salt": pii_salt(), "value": value}).fetchone()[0]
