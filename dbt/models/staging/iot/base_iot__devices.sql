{{ config(materialized="ephemeral") }}
{# Validates every raw device-registration line. #}
with checked as (
    select
        *,
        device_id as record_id,
        {{ parse_utc_ts('registered_at') }} as ts,
        {{ common_reject_reason(
            'malformed', ['device_id', 'customer_id'], parse_utc_ts('registered_at'), 'registered_at',
            text_fields=['device_id', 'customer_id', 'device_type', 'registered_at']) }} as pre_dedup_reason
    from {{ source('raw', 'iot__devices') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ mask_pii('raw') }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
