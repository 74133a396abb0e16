{{ config(materialized='incremental', pre_hook="{{ delete_partition_range() }}") }}
{# Edges of the identity graph seen on each day: a login ties a cookie to a customer, a CRM
   record ties a customer to a social handle, a registration ties a device to a customer.
   Every identifier that acts also links to itself, so lone identifiers become persons too.
   Kept incrementally (unlike other intermediates) because stitching needs every day's edges. #}
with edges as (
    select event_date, 'cookie:' || cookie_id as left_node, 'customer:' || customer_id as right_node
    from {{ ref('stg_web__events') }} where customer_id is not null
    union all
    select event_date, 'cookie:' || cookie_id, 'cookie:' || cookie_id from {{ ref('stg_web__events') }}
    union all
    select event_date, 'customer:' || customer_id, 'handle:' || social_handle_hash
    from {{ ref('stg_crm__customers') }} where social_handle_hash is not null
    union all
    select event_date, 'customer:' || customer_id, 'customer:' || customer_id from {{ ref('stg_crm__customers') }}
    union all
    select event_date, 'handle:' || handle_hash, 'handle:' || handle_hash from {{ ref('stg_social__engagements') }}
    union all
    select event_date, 'customer:' || customer_id, 'customer:' || customer_id from {{ ref('stg_crm__orders') }}
    union all
    select event_date, 'customer:' || customer_id, 'customer:' || customer_id from {{ ref('stg_crm__tickets') }}
    union all
    select event_date, 'device:' || device_id, 'customer:' || customer_id from {{ ref('stg_iot__devices') }}
    union all
    select event_date, 'device:' || device_id, 'device:' || device_id from {{ ref('stg_iot__readings') }}
    union all
    select event_date, 'imported:' || source || ':' || person_hash, 'imported:' || source || ':' || person_hash
    from {{ ref('stg_import__events') }}
)

select distinct event_date, left_node, right_node from edges
