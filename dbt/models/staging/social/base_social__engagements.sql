{{ config(materialized="ephemeral") }}
{# Parses and validates every raw social line; staging keeps the valid ones, rejected_events the rest. #}
{% set fields = {
    'record_id': 'engagement_id', 'ts_text': 'ts', 'handle': 'handle', 'action': 'action',
    'post_id': 'post_id', 'text': 'text', 'tags_text': 'tags',
} %}
with raw_lines as (
    select *, try_cast(raw as json) as doc
    from {{ source('raw', 'social__engagements') }}
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
        try_cast(doc -> '$.tags' as varchar[]) as tags,
        not {{ is_json_object('doc') }} as is_malformed
    from extracted
),

checked as (
    select
        *,
        {{ common_reject_reason('is_malformed', ['record_id', 'handle'], 'ts', 'ts_text',
            action='action', accepted_actions=var('social_actions'),
            text_fields=fields.keys()) }} as pre_dedup_reason
    from parsed
)

select *, {{ redact_values('raw', ['handle']) }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
