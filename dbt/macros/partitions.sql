{# The partition range [PERSONAS_MIN_DATE, PERSONAS_MAX_DATE] Dagster materialises; unset, every
   landed day is in range. Environment variables rather than --vars: dbt re-parses only the files
   that read a changed variable, while new --vars cost a full parse of the project on every run. #}
{% macro partition_filter(column) -%}
  {%- if env_var('PERSONAS_MIN_DATE', '') -%}
    {{ column }} between '{{ env_var("PERSONAS_MIN_DATE") }}'::date and '{{ env_var("PERSONAS_MAX_DATE") }}'::date
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
