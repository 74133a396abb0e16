{{ config(materialized="ephemeral") }}
{# Parses and validates every raw web line; staging keeps the valid ones, rejected_events the rest. #}
{% set fields = {
    'record_id': 'event_id', 'ts_text': 'ts', 'session_id': 'session_id', 'cookie_id': 'cookie_id',
    'customer_id': 'customer_id', 'event_type': 'event_type', 'url': 'url', 'item_id': 'item_id',
    'category': 'category', 'title': 'title', 'query': 'query', 'ip': 'ip', 'user_agent': 'user_agent',
} %}
with raw_lines as (
    select *, try_cast(raw as json) as doc
    from {{ source('raw', 'web__events') }}
    where {{ partition_filter('event_date') }}
),

extracted as (
    select *, json_extract_string(doc, {{ json_paths(fields) }}) as field_values
    from raw_lines
),

parsed as (
    select
        event_date, landing_file, line_no, raw, bad_encoding, oversized,
        {{- unpack_fields('field_values', fields) }},
        {{ parse_utc_ts('ts_text') }} as ts,
        not {{ is_json_object('doc') }} as is_malformed
    from extracted
),

checked as (
    select
        *,
        {{ common_reject_reason('is_malformed', ['record_id', 'cookie_id'], 'ts', 'ts_text',
            action='event_type', accepted_actions=var('web_actions'),
            text_fields=fields.keys()) }} as pre_dedup_reason
    from parsed
)

select *, {{ redact_values('raw', ['ip']) }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
