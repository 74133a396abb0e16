{{ config(materialized="ephemeral") }}
{# Validates every raw customer line; customers carry most of the PII, so the rejected raw
   line has every known PII value cut out. #}
with checked as (
    select
        *,
        customer_id as record_id,
        {{ parse_utc_ts('updated_at') }} as ts,
        {{ common_reject_reason('malformed', ['customer_id'], parse_utc_ts('updated_at'), 'updated_at',
            text_fields=['customer_id', 'email', 'phone', 'first_name', 'last_name', 'region', 'age_band',
                         'social_handle', 'updated_at']) }} as pre_dedup_reason
    from {{ source('raw', 'crm__customers') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ redact_values('raw', ['email', 'phone', 'first_name', 'last_name', 'social_handle']) }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
