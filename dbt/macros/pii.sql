{# PII never leaves staging in the clear: identifiers are replaced by a salted SHA-256.
   The salt comes from PERSONAS_PII_SALT; the default is for demos only and says so loudly.
   Python's twin is dagster_project/privacy/pii.py, which runs the same SQL through DuckDB
   (tests/test_dbt_contracts.py checks the two hash alike). #}
{% macro pii_salt() -%}
  {%- set salt = env_var('PERSONAS_PII_SALT', '') -%}
  {%- if salt == '' -%}
    {%- if execute -%}
      {{ log("WARNING: PERSONAS_PII_SALT is not set; PII is hashed with the public default salt. Set it in production.", info=True) }}
    {%- endif -%}
    {{- return('personas-dev-salt-change-me') -}}
  {%- endif -%}
  {{- return(salt) -}}
{%- endmacro %}

{# The salt as a SQL string literal, its quotes doubled. #}
{% macro pii_salt_literal() -%}
  '{{ pii_salt() | replace("'", "''") }}'
{%- endmacro %}

{# An identifier that may be PII: null when blank, else the salted hash of it trimmed and lower-cased. #}
{% macro pii_hash(expr) -%}
  case when nullif(trim({{ expr }}), '') is null then null
       else sha256({{ pii_salt_literal() }} || lower(trim({{ expr }}))) end
{%- endmacro %}

{# An imported log's person id: trimmed but not lower-cased (`USER001` and `user001` are two people). #}
{% macro pii_hash_case_kept(expr) -%}
  case when nullif(trim({{ expr }}), '') is not null then sha256({{ pii_salt_literal() }} || trim({{ expr }})) end
{%- endmacro %}

{# Masks PII patterns inside free text: emails, IPv4 addresses, phone numbers, @handles. #}
{% macro mask_pii(expr) -%}
  regexp_replace(regexp_replace(regexp_replace(regexp_replace({{ expr }},
    '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '<email>', 'g'),
    '\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b', '<ip>', 'g'),
    '\+\d{1,3}([\s.-]?\d{2,5}){2,5}|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b', '<phone>', 'g'),
    '@[A-Za-z0-9_.]+', '<handle>', 'g')
{%- endmacro %}

{# Rejected raw lines keep their shape for debugging, but the known PII values of the
   record are cut out before the pattern masks run. #}
{% macro redact_values(expr, columns) -%}
  {%- set ns = namespace(sql=expr) -%}
  {%- for column in columns -%}
    {%- set ns.sql = "case when nullif(" ~ column ~ ", '') is null then " ~ ns.sql ~ " else replace(" ~ ns.sql ~ ", " ~ column ~ ", '<redacted>') end" -%}
  {%- endfor -%}
  {{ mask_pii(ns.sql) }}
{%- endmacro %}
