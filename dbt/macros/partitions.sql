{# The partition range [PERSONAS_MIN_DATE, PERSONAS_MAX_DATE] Dagster materialises; unset, every
   landed day is in range. Environment variables rather than --vars: new --vars cost a full parse
   of the project on every run. And read only when executing: a variable read while parsing makes
   dbt re-parse every file that read it once its value changes, that is the 11 files of this
   filter on every run of a new range (2-6 s); the parse needs no range, the compiled SQL is the same. #}
{% macro partition_filter(column) -%}
  {%- if execute and env_var('PERSONAS_MIN_DATE', '') -%}
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
