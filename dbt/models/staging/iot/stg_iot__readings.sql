{# Valid, deduplicated readings; location is coarsened to a ~10 km grid cell. #}
select
    record_id as reading_id,
    event_date,
    parsed_ts as ts,
    device_id,
    nullif(device_type, '') as device_type,
    nullif(signal, '') as signal,
    value::double as value,
    {{ mask_pii('context') }} as context,
    round(try_cast(lat as double), 1) as lat_cell,
    round(try_cast(lon as double), 1) as lon_cell,
    landing_file,
    line_no
from {{ ref('base_iot__readings') }} as line
where reject_reason is null and {{ not_resent('line') }}
