{{ config(pre_hook="{{ delete_partition_range() }}") }}
{# Every accepted behavioural event of the four sources, in one shape, tied to its person. #}
with events as (
    select event_id, event_date, ts, 'web' as source, event_type as action, item_id as object_id,
           category, coalesce(title, query) as text, 'cookie:' || cookie_id as identifier
    from {{ ref('stg_web__events') }}
    union all
    select engagement_id, event_date, ts, 'social', action, post_id, null, text, 'handle:' || handle_hash
    from {{ ref('stg_social__engagements') }}
    union all
    select order_id, event_date, ts, 'crm', 'order', item_id, category, title, 'customer:' || customer_id
    from {{ ref('stg_crm__orders') }}
    union all
    select ticket_id, event_date, ts, 'crm', 'ticket', null, null, subject, 'customer:' || customer_id
    from {{ ref('stg_crm__tickets') }}
    union all
    select reading_id, event_date, ts, 'iot', 'reading', null, null, context, 'device:' || device_id
    from {{ ref('stg_iot__readings') }}
    union all
    select event_id, event_date, ts, source, action, object_id, category, title,
           'imported:' || source || ':' || person_hash
    from {{ ref('stg_import__events') }}
)

select
    events.event_id,
    identities.person_id,
    events.event_date,
    events.ts,
    events.source,
    events.action,
    events.object_id,
    events.category,
    events.text
from events
join {{ ref('dim_person_identifiers') }} as identities on identities.identifier = events.identifier
