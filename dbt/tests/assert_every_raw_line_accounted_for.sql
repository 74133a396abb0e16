{# Every raw line of the partition range is staged or rejected, exactly once. #}
select *
from {{ ref('audit_record_counts') }}
where
    {{ partition_filter('event_date') }}
    and raw_lines <> staged + rejected
