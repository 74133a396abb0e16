{# Valid events of imported logs, in the shape of the built-in sources; the log's person id
   is hashed like any identifier that may be PII (it could be an email). #}
select
    record_id as event_id,
    event_date,
    parsed_ts as ts,
    source,
    {{ pii_hash('person_id') }} as person_hash,
    trim(action) as action,
    object_id,
    nullif(title, '') as title,
    nullif(category, '') as category,
    origin
from {{ ref('base_import__events') }}
where reject_reason is null
