{# Valid web events, deduplicated across days and sources, with their landing file:line; the IP is hashed
   and the user agent reduced to a browser family. #}
select
    record_id as event_id,
    event_date,
    ts,
    session_id,
    cookie_id,
    nullif(trim(customer_id), '') as customer_id,
    event_type,
    nullif(item_id, '') as item_id,
    nullif(category, '') as category,
    nullif(title, '') as title,
    {{ mask_pii("nullif(query, '')") }} as query,
    {{ pii_hash('ip') }} as ip_hash,
    case
        when user_agent ilike '%edg/%' then 'edge'
        when user_agent ilike '%chrome/%' then 'chrome'
        when user_agent ilike '%firefox/%' then 'firefox'
        when user_agent ilike '%safari/%' then 'safari'
        else 'other'
    end as browser_family,
    landing_file,
    line_no
from {{ ref('base_web__events') }} as line
where reject_reason is null and {{ not_resent('line') }}
