{# Valid events of imported logs, in the shape of the built-in sources; the log's person id
   is hashed like any identifier that may be PII (it could be an email), but case kept
   (see base_import__events). #}
select
    record_id as event_id,
    event_date,
    parsed_ts as ts,
    source,
    person_hash,
    trim(action) as action,
    object_id,
    nullif(title, '') as title,
    nullif(category, '') as category,
    origin,
    landing_file,
    line_no
from {{ ref('base_import__events') }} as line
where reject_reason is null and {{ not_resent('line') }}
