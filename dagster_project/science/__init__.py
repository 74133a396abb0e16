"""Pure persona science: segmentation, vectorising, clustering, labelling and metrics.

Nothing here imports Dagster or DuckDB; the asset modules read tables into Polars
frames, call these functions and write the results back.
"""
