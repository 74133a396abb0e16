{{ config(materialized="ephemeral") }}
{# Validates every raw order line: ids, timestamp, numeric types and a non-negative amount. #}
with checked as (
    select
        *,
        order_id as record_id,
        {{ parse_utc_ts('ts') }} as parsed_ts,
        {{ common_reject_reason('malformed', ['order_id', 'customer_id'], parse_utc_ts('ts'), 'ts',
            extra_checks=[
                ("try_cast(quantity as integer) is null or try_cast(amount as decimal(18, 2)) is null", 'wrong_type'),
                ("try_cast(amount as decimal(18, 2)) < 0 or try_cast(quantity as integer) <= 0", 'negative_amount'),
            ]) }} as pre_dedup_reason
    from {{ source('raw', 'crm__orders') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ mask_pii('raw') }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
