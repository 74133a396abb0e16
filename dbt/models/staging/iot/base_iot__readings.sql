{{ config(materialized="ephemeral") }}
{# Validates every raw IoT reading line; precise coordinates are cut from rejected lines. A NaN is
   `not_a_number`; an infinite value, a coordinate off the globe or a value outside its signal's
   declared range (var `iot_signal_ranges`) is `out_of_range`. #}
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
                ("isnan(try_cast(value as double)) or isnan(try_cast(lat as double))
                  or isnan(try_cast(lon as double))", 'not_a_number'),
                (signal_out_of_range('signal', 'try_cast(value as double)') ~ "
                  or try_cast(lat as double) not between -90 and 90
                  or try_cast(lon as double) not between -180 and 180", 'out_of_range'),
            ],
            text_fields=['reading_id', 'device_id', 'ts', 'device_type', 'signal', 'value', 'context', 'lat',
                         'lon']) }} as pre_dedup_reason
    from {{ source('raw', 'iot__readings') }}
    where {{ partition_filter('event_date') }}
)

select *, {{ redact_values('raw', ['lat', 'lon']) }} as raw_redacted
from ({{ with_duplicates_rejected('checked', 'record_id') }})
