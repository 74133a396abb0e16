{# Valid, deduplicated support tickets; PII patterns in subject and body are masked. #}
select
    record_id as ticket_id,
    event_date,
    parsed_ts as ts,
    customer_id,
    nullif(channel, '') as channel,
    {{ mask_pii('subject') }} as subject,
    {{ mask_pii('body') }} as body,
    landing_file,
    line_no
from {{ ref('base_crm__tickets') }} as line
where reject_reason is null and {{ not_resent('line') }}
