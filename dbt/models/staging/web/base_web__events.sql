{{ config(materialized="ephemeral") }}
{# Parses and validates every raw web line; staging keeps the valid ones, rejected_events the rest. #}
with raw_lines as (
    select *, try_cast(raw as json) as doc
    from {{ source('raw', 'web__events') }}
    where {{ partition_filter('event_date') }}
),

parsed as (
    select
        event_date, landing_file, line_no, raw, bad_encoding,
        doc->>'$.event_id' as record_id,
        doc->>'$.ts' as ts_text,
        {{ parse_utc_ts("doc->>'$.ts'") }} as ts,
        doc->>'$.session_id' as session_id,
        doc->>'$.cookie_id' as cookie_id,
        doc->>'$.customer_id' as customer_id,
        doc->>'$.event_type' as event_type,
        doc->>'$.url' as url,
        doc->>'$.item_id' as item_id,
        doc->>'$.category' as category,
        doc->>'$.title' as title,
        doc->>'$.query' as query,
        doc->>'$.ip' as ip,
        doc->>'$.user_agent' as user_agent,
        doc is null or json_type(doc) <> 'OBJECT' as is_malformed
    from raw_lines
),

checked as (
    select
        *,
        {{ common_reject_reason('is_malformed', ['record_id', 'cookie_id'], 'ts', 'ts_text',
            action='event_type', accepted_actions=['page_view', 'search', 'click', 'add_to_cart']) }} as pre_dedup_reason
    from parsed
)

select *, {{ redact_values('raw', ['ip']) }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
