{{ config(materialized='table') }}
{# Every identifier mapped to its person. A person's id hangs off its CRM customer id when it
   has one (stable as new cookies or devices join), else off its smallest identifier. #}
with anchored as (
    select
        node,
        component,
        coalesce(
            min(node) filter (where node like 'customer:%') over (partition by component),
            min(node) over (partition by component)
        ) as anchor
    from {{ ref('int_identity_components') }}
)

select
    node as identifier,
    split_part(node, ':', 1) as identifier_type,
    substr(node, length(split_part(node, ':', 1)) + 2) as identifier_value,
    'p-' || substr(md5(anchor), 1, 16) as person_id
from anchored
