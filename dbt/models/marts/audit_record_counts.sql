{{ config(pre_hook="{{ delete_partition_range() }}") }}
{# Reconciliation per source entity and day: raw lines in, staged rows and rejected rows out.
   The test assert_every_raw_line_accounted_for fails any row where they do not add up. #}
with counts as (
    {% for entity in var('source_entities') %}
    select '{{ entity }}' as source_entity, event_date, count(*) as raw_lines, 0 as staged, 0 as rejected
    from {{ source('raw', entity) }} where {{ partition_filter('event_date') }} group by all
    union all
    select '{{ entity }}', event_date, 0, count(*), 0 from {{ ref('stg_' ~ entity) }} group by all
    union all
    select '{{ entity }}', event_date, 0, 0, count(*) from {{ ref('rejected_events') }}
    where source || '__' || entity = '{{ entity }}' and {{ partition_filter('event_date') }} group by all
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    split_part(source_entity, '__', 1) as source,
    split_part(source_entity, '__', 2) as entity,
    event_date,
    sum(raw_lines)::bigint as raw_lines,
    sum(staged)::bigint as staged,
    sum(rejected)::bigint as rejected
from counts
group by all
