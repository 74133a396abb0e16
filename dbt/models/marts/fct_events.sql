{{ config(
    pre_hook="{{ delete_partition_range() }}",
    post_hook="update {{ this }} set event_key = {{ event_key('event_id') }} where event_key is null",
) }}
{# Every accepted behavioural event of the four sources, in one shape, tied to its person and to the
   landing line it came from (which also names the first copy when a later copy is rejected as a
   duplicate: see int_resent_records). `event_key`, a stable 64-bit hash of the id, lets that look-up
   scan 8 bytes a row instead of the id text; the post-hook fills it in rows of older warehouses. #}
with events as (
    select
        event_id, event_date, ts, 'web' as source, event_type as action, item_id as object_id,
        category, coalesce(title, query) as text, 'cookie:' || cookie_id as identifier, landing_file, line_no
    from {{ ref('stg_web__events') }}
    union all
    select
        engagement_id, event_date, ts, 'social', action, post_id, null, text,
        'handle:' || handle_hash, landing_file, line_no
    from {{ ref('stg_social__engagements') }}
    union all
    select
        order_id, event_date, ts, 'crm', 'order', item_id, category, title,
        'customer:' || customer_id, landing_file, line_no
    from {{ ref('stg_crm__orders') }}
    union all
    select
        ticket_id, event_date, ts, 'crm', 'ticket', null, null, subject,
        'customer:' || customer_id, landing_file, line_no
    from {{ ref('stg_crm__tickets') }}
    union all
    select
        reading_id, event_date, ts, 'iot', 'reading', null, null, context,
        'device:' || device_id, landing_file, line_no
    from {{ ref('stg_iot__readings') }}
    union all
    select
        event_id, event_date, ts, source, action, object_id, category, title,
        'imported:' || source || ':' || person_hash, landing_file, line_no
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
    events.text,
    events.landing_file,
    events.line_no,
    {{ event_key('events.event_id') }} as event_key
from events
inner join {{ ref('dim_person_identifiers') }} as identities on events.identifier = identities.identifier
