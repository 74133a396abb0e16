{# Valid, deduplicated social engagements; the handle is hashed and PII patterns in text masked. #}
select
    record_id as engagement_id,
    event_date,
    ts,
    {{ pii_hash("ltrim(handle, '@')") }} as handle_hash,
    action,
    nullif(post_id, '') as post_id,
    {{ mask_pii('text') }} as text,
    coalesce(tags, []::varchar[]) as tags,
    landing_file,
    line_no
from {{ ref('base_social__engagements') }} as line
where reject_reason is null and {{ not_resent('line') }}
