{# Connected components over every identity edge seen so far, by minimum-label propagation
   (a recursive CTE keyed on the node, so each node keeps only its best label). sqlfluff's DuckDB
   grammar lacks `using key`, hence its noqa. #}
with recursive undirected as (  -- noqa: PRS
    select left_node as node, right_node as neighbour from {{ ref('int_identity_links') }}
    union
    select right_node, left_node from {{ ref('int_identity_links') }}
),

nodes as (
    select distinct node from undirected
),

components(node, component) using key (node) as (
    select node, node from nodes
    union
    select undirected.neighbour, min(components.component)
    from components
    join undirected on undirected.node = components.node
    left join recurring.components as known on known.node = undirected.neighbour
    group by undirected.neighbour
    having min(components.component) < min(known.component)
)

select node, component from components
