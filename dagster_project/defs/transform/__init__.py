"""The dbt models as partitioned assets with their dbt tests."""
