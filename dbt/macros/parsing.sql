{# Landing timestamps are ISO 8601 UTC ('Z'); anything else parses to null and is rejected.
   Timestamps are stored as naive TIMESTAMP in UTC throughout the warehouse. #}
{% macro parse_utc_ts(expr) -%}
  try_strptime({{ expr }}, ['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%SZ', '%Y-%m-%dT%H:%M:%S.%fZ'])
{%- endmacro %}

{# The reject reasons shared by every event-like entity, in order of precedence.
   Entity-specific reasons are passed as (condition, reason) pairs and checked after the
   timestamp; duplicates are decided afterwards, among otherwise valid rows. #}
{% macro common_reject_reason(is_malformed, required_ids, ts, ts_text, action=none, accepted_actions=none, extra_checks=[]) -%}
  case
    when bad_encoding then 'bad_encoding'
    when {{ is_malformed }} then 'malformed_record'
    {%- for id in required_ids %}
    when nullif(trim({{ id }}), '') is null then 'missing_id'
    {%- endfor %}
    {%- if action %}
    when {{ action }} is null or {{ action }} not in ({% for a in accepted_actions %}'{{ a }}'{% if not loop.last %}, {% endif %}{% endfor %}) then 'unknown_action'
    {%- endif %}
    when {{ ts }} is null then 'unparseable_timestamp'
    when {{ ts }} > now()::timestamp then 'future_timestamp'
    when {{ ts }}::date <> event_date then 'timestamp_outside_partition'
    {%- for condition, reason in extra_checks %}
    when {{ condition }} then '{{ reason }}'
    {%- endfor %}
  end
{%- endmacro %}

{# Keeps the first copy of a record id within its day's file and marks later copies. Deduplication
   stays inside a partition, so a day gives the same rows whether it runs alone or in a range
   (and a CRM customer updated on a later day is an update, not a duplicate). #}
{% macro with_duplicates_rejected(relation, record_id) -%}
  select
    * exclude (pre_dedup_reason),
    case
      when pre_dedup_reason is not null then pre_dedup_reason
      when row_number() over (
        partition by event_date, {{ record_id }}, pre_dedup_reason is null order by line_no
      ) > 1 then 'duplicate'
    end as reject_reason
  from {{ relation }}
{%- endmacro %}

{# Every field of a JSON line from one parse. `doc->>'$.key'` re-parses the whole line for each
   field (13 parses of each web line, 2.9 s of a 1M-event day); one json_extract_string over a
   list of paths parses it once (0.6 s) and gives the same strings. `fields` maps each output
   column to its JSON key, in order: `json_paths` is the list to extract, `unpack_fields` names
   the extracted values. #}
{% macro json_paths(fields) -%}
  [{% for key in fields.values() %}'$.{{ key }}'{% if not loop.last %}, {% endif %}{% endfor %}]
{%- endmacro %}

{% macro unpack_fields(values, fields) -%}
  {%- for column in fields %}
        {{ values }}[{{ loop.index }}] as {{ column }}{% if not loop.last %},{% endif %}
  {%- endfor %}
{%- endmacro %}

{# Whether a parsed (or null) JSON document is an object: for valid JSON that is its first
   non-blank character, which costs no second parse as json_type would. #}
{% macro is_json_object(doc) -%}
  coalesce(starts_with(ltrim({{ doc }}, e' \t\n\r'), '{'), false)
{%- endmacro %}
