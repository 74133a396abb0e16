{# Valid, deduplicated orders with typed quantity and amount. #}
select
    record_id as order_id,
    event_date,
    parsed_ts as ts,
    customer_id,
    nullif(item_id, '') as item_id,
    nullif(category, '') as category,
    nullif(title, '') as title,
    quantity::integer as quantity,
    amount::decimal(18, 2) as amount,
    nullif(currency, '') as currency,
    landing_file,
    line_no
from {{ ref('base_crm__orders') }} as line
where reject_reason is null and {{ not_resent('line') }}
