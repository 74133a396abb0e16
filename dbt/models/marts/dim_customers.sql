{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='customer_id') }}
{# The latest known attributes of every CRM customer; the daily customer delta upserts it. #}
with latest_in_range as (
    select customer_id, updated_at, email_hash, phone_hash, region, age_band, social_handle_hash
    from {{ ref('stg_crm__customers') }}
    qualify row_number() over (partition by customer_id order by updated_at desc, event_date desc) = 1
)

select latest_in_range.*
from latest_in_range
{% if is_incremental() %}
left join {{ this }} as known using (customer_id)
where known.updated_at is null or latest_in_range.updated_at >= known.updated_at
{% endif %}
