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
