-- The floor: staging and memory segmentation of one landed day in plain DuckDB SQL, no orchestration.
-- Staging: every event source read from its landing file, typed, deduplicated by record id, keyed by
-- the source's own person identifier (no stitching). Intent: the category where the event has one.
-- $landing is replaced by the landing folder and $day by the partition date before the script runs.
create or replace temp table floor_events as
with web as (
    select event_id, try_cast(ts as timestamp) as ts, coalesce(nullif(customer_id, ''), cookie_id) as person_id,
           nullif(category, '') as intent, coalesce(query, title) as text, 'web' as source
    from read_json('$landing/web/events/$day.jsonl', format = 'newline_delimited', ignore_errors = true,
                   columns = {event_id: 'varchar', ts: 'varchar', cookie_id: 'varchar', customer_id: 'varchar',
                              category: 'varchar', title: 'varchar', query: 'varchar'})
),
social as (
    select engagement_id, try_cast(ts as timestamp), handle, null, text, 'social'
    from read_json('$landing/social/engagements/$day.jsonl', format = 'newline_delimited', ignore_errors = true,
                   columns = {engagement_id: 'varchar', ts: 'varchar', handle: 'varchar', text: 'varchar'})
),
orders as (
    select order_id, try_cast(ts as timestamp), customer_id, nullif(category, ''), title, 'crm'
    from read_csv('$landing/crm/orders/$day.csv', all_varchar = true, ignore_errors = true)
),
readings as (
    select reading_id, try_cast(ts as timestamp), device_id, null, context, 'iot'
    from read_csv('$landing/iot/readings/$day.csv', all_varchar = true, ignore_errors = true)
),
typed as (
    select * from web union all select * from social union all select * from orders union all select * from readings
)
select * from typed
where event_id is not null and person_id is not null and ts::date = '$day'::date
qualify row_number() over (partition by event_id order by ts) = 1;

-- segmentation
-- Same rule as science/segmentation.py: a session ends after 30 minutes without an event of the
-- person; events without intent take the previous (else the next) intent of their session; a
-- memory is a run of one session with one intent. Reads floor_events(event_id, ts, person_id, intent, text, source).
create or replace temp table floor_memories as
with sessions as (
    select *, sum(new_session) over (order by person_id, ts, event_id rows unbounded preceding) as session_no
    from (
        select *, (lag(person_id) over timeline is distinct from person_id
                   or ts - lag(ts) over timeline > interval 30 minutes)::int as new_session
        from floor_events window timeline as (order by person_id, ts, event_id)
    )
),
filled as (
    select * replace (coalesce(
        last_value(intent ignore nulls) over (partition by session_no order by ts, event_id rows between unbounded preceding and current row),
        first_value(intent ignore nulls) over (partition by session_no order by ts, event_id rows between current row and unbounded following)
    ) as intent)
    from sessions
),
runs as (
    select *, sum(new_run) over (order by person_id, ts, event_id rows unbounded preceding) as run_no
    from (
        select *, (lag(session_no) over timeline is distinct from session_no
                   or lag(intent) over timeline is distinct from intent)::int as new_run
        from filled where intent is not null window timeline as (order by person_id, ts, event_id)
    )
)
select run_no, any_value(person_id) as person_id, min(ts) as start_ts, max(ts) as end_ts, any_value(intent) as intent,
       count(*) as n_events, list_sort(list_distinct(list(source))) as sources,
       list(event_id order by ts, event_id) as event_ids, string_agg(text, ' ' order by ts, event_id) as text
from runs group by run_no;
