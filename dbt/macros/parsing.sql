{# Landing timestamps are ISO 8601 UTC ('Z'); anything else parses to null and is rejected.
   Timestamps are stored as naive TIMESTAMP in UTC throughout the warehouse. #}
{% macro parse_utc_ts(expr) -%}
  try_strptime({{ expr }}, ['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%SZ', '%Y-%m-%dT%H:%M:%S.%fZ'])
{%- endmacro %}

{# The reject reasons shared by every event-like entity, in order of precedence.
   Entity-specific reasons are passed as (condition, reason) pairs and checked after the
   timestamp; `text_fields` longer than the `max_text_chars` var make the record `oversized`.
   Duplicates are decided afterwards, among otherwise valid rows. #}
{% macro common_reject_reason(is_malformed, required_ids, ts, ts_text, action=none, accepted_actions=none, extra_checks=[], text_fields=[]) -%}
  case
    when oversized then 'oversized'  {#- a landing line over PERSONAS_MAX_LINE_BYTES, kept truncated #}
    when bad_encoding then 'bad_encoding'
    when {{ is_malformed }} then 'malformed_record'
    {%- if text_fields %}
    when {{ longest_text(text_fields) }} > {{ var('max_text_chars') }} then 'oversized'
    {%- endif %}
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

{# Keeps the first copy of a record id within its day's files and marks later copies, naming the
   first copy's file:line. Deduplication here stays inside a partition, so a day gives the same rows
   whether it runs alone or in a range (and a CRM customer updated on a later day is an update, not
   a duplicate); events re-sent on another day or by another source are caught by
   int_resent_records. #}
{% macro with_duplicates_rejected(relation, record_id) -%}
  select
    * exclude (pre_dedup_reason, copy_no, first_copy),
    case
      when pre_dedup_reason is not null then pre_dedup_reason
      when copy_no > 1 then 'duplicate'
    end as reject_reason,
    case when pre_dedup_reason is null and copy_no > 1 then event_date end as duplicate_of_date,
    case when pre_dedup_reason is null and copy_no > 1 then first_copy end as duplicate_of
  from (
    select
      *,
      row_number() over copies as copy_no,
      first_value(landing_file || ':' || line_no) over copies as first_copy
    from {{ relation }}
    window copies as (partition by event_date, {{ record_id }}, pre_dedup_reason is null order by landing_file, line_no)
  )
{%- endmacro %}

{# The length of the longest of `fields` (text expressions), 0 when all are null. #}
{% macro longest_text(fields) -%}
  greatest({% for field in fields %}coalesce(length({{ field }}), 0){% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{# Whether a reading breaks the plausible range its signal declares in the `iot_signal_ranges` var;
   an infinite value is out of every range, a signal not declared has no other bound. #}
{% macro signal_out_of_range(signal, value) -%}
  (not isfinite({{ value }}) or case {{ signal }}
    {%- for name, bounds in var('iot_signal_ranges').items() %}
    when '{{ name }}' then {{ value }} not between {{ bounds[0] }} and {{ bounds[1] }}
    {%- endfor %}
    else false
  end)
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

{# Whether a staged line's event id was not already taken on an earlier day or by an earlier line
   of another source (see int_resent_records); `line` names the base relation's alias. #}
{% macro not_resent(line) -%}
  not exists (
    select 1 from {{ ref('int_resent_records') }} as resent
    where resent.landing_file = {{ line }}.landing_file and resent.line_no = {{ line }}.line_no
  )
{%- endmacro %}

{# A stable 64-bit key of an event id (the upper half of its MD5, unlike hash() the same in every
   DuckDB version), stored in fct_events for the re-sent-record look-up. #}
{% macro event_key(expr) -%}
  md5_number_upper({{ expr }})
{%- endmacro %}
