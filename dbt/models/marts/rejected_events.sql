{{ config(pre_hook="{{ delete_partition_range() }}") }}
{# Every raw line that staging refused, with the reason, pointing back at file:line; a duplicate
   names the day and file:line of the copy that was kept. Known PII values are redacted from the
   stored line. int_resent_records holds lines of event entities only: other entities' lines never match it. #}
{% for entity in var('source_entities') %}
select
    '{{ entity.split("__")[0] }}' as source,
    '{{ entity.split("__")[1] }}' as entity,
    line.landing_file,
    line.line_no,
    line.record_id,
    line.raw_redacted as raw,
    coalesce(line.reject_reason, 'duplicate') as reason,
    line.event_date,
    coalesce(line.duplicate_of_date, resent.duplicate_of_date) as duplicate_of_date,
    coalesce(line.duplicate_of, resent.duplicate_of) as duplicate_of
from {{ ref('base_' ~ entity) }} as line
left join {{ ref('int_resent_records') }} as resent
    on line.landing_file = resent.landing_file and line.line_no = resent.line_no
where line.reject_reason is not null or resent.line_no is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
