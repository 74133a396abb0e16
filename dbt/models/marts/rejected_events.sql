{{ config(pre_hook="{{ delete_partition_range() }}") }}
{# Every raw line that staging refused, with the reason, pointing back at file:line.
   Known PII values are redacted from the stored line. #}
{% set entities = ['web__events', 'social__engagements', 'crm__customers', 'crm__orders',
                   'crm__tickets', 'iot__devices', 'iot__readings', 'import__events'] %}
{% for entity in entities %}
select
    '{{ entity.split("__")[0] }}' as source,
    '{{ entity.split("__")[1] }}' as entity,
    landing_file,
    line_no,
    record_id,
    raw_redacted as raw,
    reject_reason as reason,
    event_date
from {{ ref('base_' ~ entity) }}
where reject_reason is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
