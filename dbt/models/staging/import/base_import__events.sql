{{ config(materialized="ephemeral") }}
{# Validates every line of an imported log (`personas import`); `origin` points at the
   user's own file and line. The log's person id is hashed exactly as given, trimmed but
   not lower-cased (`USER001` and `user001` are two people), and a rejected line keeps that
   hash in place of the id (macro pii_hash_case_kept; Python's twin is privacy/pii.py). #}
with checked as (
    select
        *,
        event_id as record_id,
        {{ pii_hash_case_kept('person_id') }} as person_hash,
        {{ parse_utc_ts('ts') }} as parsed_ts,
        {{ common_reject_reason('malformed', ['event_id', 'person_id', 'object_id'], parse_utc_ts('ts'), 'ts',
            extra_checks=[("nullif(trim(action), '') is null", 'unknown_action'),
                          ("object_known <> 'true'", 'unknown_object')],
            text_fields=['event_id', 'person_id', 'ts', 'action', 'object_id', 'title', 'category', 'source',
                         'origin']) }} as pre_dedup_reason
    from {{ source('raw', 'import__events') }}
    where {{ partition_filter('event_date') }}
)

{# The person id is the line's second field (event ids hold no comma), quoted or not. #}
select
    *,
    {{ mask_pii("regexp_replace(raw, '^([^,]*),(\"(?:[^\"]|\"\")*\"|[^,\"]*)', '\\1,' || coalesce(person_hash, ''))") }}
        as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
