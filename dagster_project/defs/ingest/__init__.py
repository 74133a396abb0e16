"""Landing files into raw DuckDB tables."""
