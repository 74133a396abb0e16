{# Valid event lines of the range whose id was already taken: by an event of an earlier-run day in
   fct_events, or by an earlier line of the range (earlier day, then landing file and line), whatever
   the source. Staging drops them and rejected_events keeps them as `duplicate` with the first
   copy's day and file:line, so fct_events never holds one id twice. The range's own days are left
   out of the look-up, so a rerun of a day does not find its own rows. fct_events is read by name
   (it is downstream, a ref would be a cycle) and only for the range's ids: a semi-join on the
   8-byte event_key finds the matching rows, whose ids and lines are then read by rowid, so a day
   reads no id text of the history (0.5 s against 3.7 s for the id column of 30M rows). Copies
   within one entity's day are already marked by with_duplicates_rejected, so only their first
   copy competes here. Validating every line again costs a third parse of the range, so a cheap
   look-up of the raw ids runs first: when no id is in two entity-days of the range or in the
   history (the usual day), the table is empty without it. #}
{% set fct_events = adapter.get_relation(this.database, this.schema, 'fct_events') if execute else none %}
{% set fct_columns = adapter.get_columns_in_relation(fct_events) | map(attribute='name') | list if fct_events else [] %}
{# Each entity's record id as its base model reads it, from the raw line without validating it. #}
{% set raw_ids = {
    'web__events': "json_extract_string(try_cast(raw as json), '$.event_id')",
    'social__engagements': "json_extract_string(try_cast(raw as json), '$.engagement_id')",
    'crm__orders': 'order_id', 'crm__tickets': 'ticket_id', 'iot__readings': 'reading_id',
    'import__events': 'event_id',
} %}
{% set may_repeat_sql %}
with range_ids as materialized (
    {% for entity in var('event_entities') %}
    {% set raw_id = raw_ids.get(entity) or exceptions.raise_compiler_error(
        "int_resent_records: no raw id expression for event entity " ~ entity) %}
    select distinct {{ raw_id }} as record_id, '{{ entity }}' as entity, event_date
    from {{ source('raw', entity) }}
    where {{ partition_filter('event_date') }} and nullif(trim({{ raw_id }}), '') is not null
    {{ 'union all' if not loop.last }}{% endfor %}
)

select exists (select record_id from range_ids group by record_id having count(*) > 1)
    {% if 'event_key' in fct_columns %}
    or exists (select 1 from {{ fct_events }} where not ({{ partition_filter('event_date') }})
               and event_key in (select {{ event_key('record_id') }} from range_ids))
    {% elif fct_events %}
    or exists (select 1 from {{ fct_events }} where not ({{ partition_filter('event_date') }})
               and event_id in (select record_id from range_ids))
    {% endif %}
{% endset %}
{% set may_repeat = run_query(may_repeat_sql).columns[0].values()[0] if execute else true %}
{% if not may_repeat %}
select null::varchar as landing_file, null::bigint as line_no, null::varchar as record_id,
       null::date as event_date, null::date as duplicate_of_date, null::varchar as duplicate_of
where false
{% else %}
with range_lines as materialized (
    {% for entity in var('event_entities') %}
    select record_id, event_date, landing_file, line_no
    from {{ ref('base_' ~ entity) }}
    where reject_reason is null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

{% if 'event_key' in fct_columns %}
earlier_matches as materialized (
    select rowid as row_id
    from {{ fct_events }}
    where not ({{ partition_filter('event_date') }})
      and event_key in (select {{ event_key('record_id') }} from range_lines)
),
{% endif %}

earlier_days as (
    {% if 'event_key' in fct_columns %}
    select event_id as record_id, event_date, landing_file, line_no
    from {{ fct_events }}
    where rowid in (select row_id from earlier_matches)  {#- a key collision finds no copy in `repeated` #}
    {% elif fct_events %}
    {# a warehouse built before fct_events kept keys and landing lines: its first run compares ids #}
    select event_id as record_id, event_date, null::varchar as landing_file, null::bigint as line_no
    from {{ fct_events }}
    where not ({{ partition_filter('event_date') }})
      and event_id in (select record_id from range_lines)
    {% else %}
    select
        null::varchar as record_id, null::date as event_date, null::varchar as landing_file,
        null::bigint as line_no
    where false
    {% endif %}
),

sightings as (
    select *, 0 as precedence from earlier_days
    union all
    select *, 1 as precedence from range_lines
),

repeated as (
    select * from sightings
    where record_id in (
        select copies.record_id from sightings as copies group by copies.record_id having count(*) > 1
    )
),

ranked as (
    select
        *,
        row_number() over copies as copy_no,
        first_value(event_date) over copies as duplicate_of_date,
        first_value(landing_file || ':' || line_no) over copies as duplicate_of
    from repeated
    window copies as (partition by record_id order by precedence, event_date, landing_file, line_no)
)

select landing_file, line_no, record_id, event_date, duplicate_of_date, duplicate_of
from ranked
where precedence = 1 and copy_no > 1
{% endif %}
