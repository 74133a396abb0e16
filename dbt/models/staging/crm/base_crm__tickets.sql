{{ config(materialized="ephemeral") }}
{# Validates every raw support-ticket line. #}
with checked as (
    select
        *,
        ticket_id as record_id,
        {{ parse_utc_ts('ts') }} as parsed_ts,
        {{ common_reject_reason('malformed', ['ticket_id', 'customer_id'], parse_utc_ts('ts'), 'ts',
            text_fields=['ticket_id', 'customer_id', 'ts', 'channel', 'subject', 'body']) }} as pre_dedup_reason
    from {{ source('raw', 'crm__tickets') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ mask_pii('raw') }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
