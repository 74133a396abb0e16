{# The partition range Dagster materialises; without vars every landed day is in range. #}
{% macro partition_filter(column) -%}
  {%- if var('min_date') -%}
    {{ column }} between '{{ var("min_date") }}'::date and '{{ var("max_date") }}'::date
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{# Idempotent incremental writes: the range's rows are deleted before the new ones are
   appended, in the same transaction, so a rerun replaces a partition (even with zero rows). #}
{% macro delete_partition_range() -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ partition_filter('event_date') }}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}
