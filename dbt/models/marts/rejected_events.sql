{{ config(pre_hook="{{ delete_partition_range() }}") }}
{# Every raw line that staging refused, with the reason, pointing back at file:line; a duplicate
   names the day and file:line of the copy that was kept. Known PII values are redacted from the
   stored line. #}
{% set entities = ['web__events', 'social__engagements', 'crm__customers', 'crm__orders',
                   'crm__tickets', 'iot__devices', 'iot__readings', 'import__events'] %}
{% set event_entities = ['web__events', 'social__engagements', 'crm__orders', 'crm__tickets',
                         'iot__readings', 'import__events'] %}
{% for entity in entities %}
select
    '{{ entity.split("__")[0] }}' as source,
    '{{ entity.split("__")[1] }}' as entity,
    line.landing_file,
    line.line_no,
    line.record_id,
    raw_redacted as raw,
{%- if entity in event_entities %}
    coalesce(line.reject_reason, 'duplicate') as reason,
    line.event_date,
    coalesce(line.duplicate_of_date, resent.duplicate_of_date) as duplicate_of_date,
    coalesce(line.duplicate_of, resent.duplicate_of) as duplicate_of
from {{ ref('base_' ~ entity) }} as line
left join {{ ref('int_resent_records') }} as resent
    on resent.landing_file = line.landing_file and resent.line_no = line.line_no
where line.reject_reason is not null or resent.line_no is not null
{%- else %}
    reject_reason as reason,
    event_date,
    duplicate_of_date,
    duplicate_of
from {{ ref('base_' ~ entity) }} as line
where reject_reason is not null
{%- endif %}
{% if not loop.last %}union all{% endif %}
{% endfor %}
