{{ config(materialized="ephemeral") }}
{# Validates every raw IoT reading line; precise coordinates are cut from rejected lines. #}
with checked as (
    select
        *,
        reading_id as record_id,
        {{ parse_utc_ts('ts') }} as parsed_ts,
        {{ common_reject_reason('malformed', ['reading_id', 'device_id'], parse_utc_ts('ts'), 'ts',
            extra_checks=[
                ("try_cast(value as double) is null
                  or (nullif(lat, '') is not null and try_cast(lat as double) is null)
                  or (nullif(lon, '') is not null and try_cast(lon as double) is null)", 'wrong_type'),
            ]) }} as pre_dedup_reason
    from {{ source('raw', 'iot__readings') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ redact_values('raw', ['lat', 'lon']) }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
