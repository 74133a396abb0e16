{{ config(materialized="ephemeral") }}
{# Parses and validates every raw social line; staging keeps the valid ones, rejected_events the rest. #}
with raw_lines as (
    select *, try_cast(raw as json) as doc
    from {{ source('raw', 'social__engagements') }}
    where {{ partition_filter('event_date') }}
),

parsed as (
    select
        event_date, landing_file, line_no, raw, bad_encoding,
        doc->>'$.engagement_id' as record_id,
        doc->>'$.ts' as ts_text,
        {{ parse_utc_ts("doc->>'$.ts'") }} as ts,
        doc->>'$.handle' as handle,
        doc->>'$.action' as action,
        doc->>'$.post_id' as post_id,
        doc->>'$.text' as text,
        try_cast(doc->'$.tags' as varchar[]) as tags,
        doc is null or json_type(doc) <> 'OBJECT' as is_malformed
    from raw_lines
),

checked as (
    select
        *,
        {{ common_reject_reason('is_malformed', ['record_id', 'handle'], 'ts', 'ts_text',
            action='action', accepted_actions=['like', 'share', 'comment']) }} as pre_dedup_reason
    from parsed
)

select *, {{ redact_values('raw', ['handle']) }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
