"""Sample-data generator: realistic multi-source landing files with a planted persona truth.

Pure Python on numpy and polars (no Dagster, no DuckDB), so it runs anywhere and is tested on its own.
"""

from .run import generate

__all__ = ["generate"]
