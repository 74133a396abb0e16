{# Valid customer records (a daily delta); names are dropped, email, phone and handle hashed. #}
select
    record_id as customer_id,
    event_date,
    ts as updated_at,
    {{ pii_hash('email') }} as email_hash,
    {{ pii_hash('phone') }} as phone_hash,
    nullif(trim(region), '') as region,
    nullif(trim(age_band), '') as age_band,
    {{ pii_hash("ltrim(social_handle, '@')") }} as social_handle_hash
from {{ ref('base_crm__customers') }}
where reject_reason is null
