"""`make bench`: one generated day materialised end to end, timed per stage, against a DuckDB floor and pandas."""
