{# Valid device registrations: the link from a device to a CRM customer. #}
select
    record_id as device_id,
    event_date,
    ts as registered_at,
    customer_id,
    nullif(device_type, '') as device_type
from {{ ref('base_iot__devices') }}
where reject_reason is null
