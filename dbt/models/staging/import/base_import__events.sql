{{ config(materialized="ephemeral") }}
{# Validates every line of an imported log (`personas import`); `origin` points at the
   user's own file and line. #}
with checked as (
    select
        *,
        event_id as record_id,
        {{ parse_utc_ts('ts') }} as parsed_ts,
        {{ common_reject_reason('malformed', ['event_id', 'person_id', 'object_id'], parse_utc_ts('ts'), 'ts',
            extra_checks=[("nullif(trim(action), '') is null", 'unknown_action'),
                          ("object_known <> 'true'", 'unknown_object')]) }} as pre_dedup_reason
    from {{ source('raw', 'import__events') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ mask_pii('raw') }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
