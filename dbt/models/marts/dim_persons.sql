{{ config(materialized='table') }}
{# One row per stitched person, with the CRM attributes of its customer record. #}
with persons as (
    select
        person_id,
        min(identifier_value) filter (where identifier_type = 'customer') as customer_id,
        count(*) as n_identifiers,
        list(distinct identifier_type order by identifier_type) as identifier_types
    from {{ ref('dim_person_identifiers') }}
    group by person_id
)

select persons.*, dim_customers.region, dim_customers.age_band
from persons
left join {{ ref('dim_customers') }} as dim_customers using (customer_id)
