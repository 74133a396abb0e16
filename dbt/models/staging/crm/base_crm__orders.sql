{{ config(materialized="ephemeral") }}
{# Validates every raw order line: ids, timestamp, an integer quantity and a non-negative amount of
   at most two decimals, written plainly. Nothing is rounded: `1.5` items, `1e3` or `10.12345` are
   refused rather than cast to 2, 1000.00 or 10.12. #}
with checked as (
    select
        *,
        order_id as record_id,
        {{ parse_utc_ts('ts') }} as parsed_ts,
        {{ common_reject_reason('malformed', ['order_id', 'customer_id'], parse_utc_ts('ts'), 'ts',
            extra_checks=[
                ("not regexp_full_match(trim(quantity), '[+-]?[0-9]+') or try_cast(quantity as integer) is null
                  or try_cast(amount as double) is null", 'wrong_type'),
                ("not regexp_full_match(trim(amount), '[+-]?[0-9]+([.][0-9]{1,2})?')
                  or try_cast(amount as decimal(18, 2)) is null", 'invalid_amount'),
                ("try_cast(amount as decimal(18, 2)) < 0 or try_cast(quantity as integer) <= 0", 'negative_amount'),
            ],
            text_fields=['order_id', 'customer_id', 'ts', 'item_id', 'category', 'title', 'quantity', 'amount',
                         'currency']) }} as pre_dedup_reason
    from {{ source('raw', 'crm__orders') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ mask_pii('raw') }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
