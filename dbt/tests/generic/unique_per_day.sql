{# A record id is unique within its day; a CRM customer may reappear on a later day as an update. #}
{% test unique_per_day(model, column_name) %}
select event_date, {{ column_name }}, count(*) as copies
from {{ model }}
where {{ column_name }} is not null
group by all
having count(*) > 1
{% endtest %}
