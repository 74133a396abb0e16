"""Persona induction through the real graph: generated data scored against the planted truth."""

from datetime import date, timedelta

import polars as pl
import pytest

from dagster_project.evaluation import evaluate
from dagster_project.generator import generate
from dagster_project.science.utility import utility_for_day
from pipeline_helpers import materialize_day, materialize_range, query, using_home

START = date(2026, 10, 1)
LAST = START + timedelta(days=3)


@pytest.fixture(scope="module")
def persona_home(tmp_path_factory):
    with using_home(tmp_path_factory.mktemp("personas")) as home:
        generate(home, days=4, people=400, events_per_day=2500, seed=5, start_date=START, world="easy")
        materialize_range(START, LAST)
        yield home


def test_every_day_has_labelled_personas_grounded_in_evidence(persona_home):
    per_day = query("select event_date, count(*), min(least(truthfulness, evidence_alignment, coverage)), "
                    "min(quality), max(quality) from personas group by 1 order by 1")
    assert [row[0] for row in per_day] == [START + timedelta(days=offset) for offset in range(4)]
    for _, n_personas, min_held_out_score, min_quality, max_quality in per_day:
        assert 8 <= n_personas <= 16
        assert 0.0 <= min_held_out_score and 0.0 <= min_quality <= max_quality <= 1.0
    # By construction every focus phrase occurs in at least two of the persona's evidence memories...
    unsupported = query(
        """with label_terms as (select event_date, persona_id, unnest(focus) as term, evidence_memory_ids from personas),
                support as (
                    select evidence.event_date, evidence.persona_id, evidence.term, count(*) filter (
                        where regexp_replace(' ' || lower(memories.text) || ' ', '[^\\pL\\pN]+', ' ', 'g')
                              like '% ' || evidence.term || ' %') as n
                    from (select *, unnest(evidence_memory_ids) as memory_id from label_terms) as evidence
                    join intent_memories as memories on memories.memory_id = evidence.memory_id
                    group by 1, 2, 3)
           select count(*) from support where n < 2"""
    )
    assert unsupported == [(0,)]
    # ...and at least two of them show a category of its domain.
    ungrounded_domains = query(
        """select count(*) from (
               select personas.event_date, personas.persona_id,
                      count(*) filter (where len(list_intersect(memories.categories, personas.domain_categories)) > 0) as n
               from (select *, unnest(evidence_memory_ids) as memory_id from personas where domain is not null) as personas
               join intent_memories as memories using (memory_id)
               group by 1, 2) where n < 2"""
    )
    assert ungrounded_domains == [(0,)]
    orphans = query(
        """select count(*) from (select unnest(evidence_memory_ids) as memory_id from personas) as evidence
           anti join intent_memories using (memory_id)"""
    )
    assert orphans == [(0,)]


def test_user_personas_weights_sum_to_one_with_at_most_five(persona_home):
    rows = query("select event_date, person_id, sum(weight), count(*) from user_personas group by all")
    assert len(rows) > 300
    assert all(abs(total - 1.0) < 1e-9 and count <= 5 for _, _, total, count in rows)


def test_memories_are_contiguous_runs_with_readable_summaries(persona_home):
    rows = query("select n_events, len(event_ids), summary, start_ts <= end_ts from intent_memories")
    assert all(n_events == n_ids and ordered for n_events, n_ids, _, ordered in rows)
    assert all(summary for *_, summary, _ in rows)
    assert query("select count(*) from intent_memories where len(sources) > 1")[0][0] > 0


def test_personas_recover_the_planted_truth_and_beat_popularity(persona_home):
    report = evaluate(persona_home)
    assert report["as_of"] == LAST.isoformat()
    assert report["ari"] >= 0.8
    assert report["truthfulness"] >= 0.9  # on held-out members, not on the evidence
    utility = report["utility"]
    assert set(utility) == {"personas", "personas_without_persona_term", "popularity", "category_profile", "item_knn",
                            "static", "persona_popularity", "persona_category"}
    assert len({entry["n"] for entry in utility.values()}) == 1 and utility["personas"]["n"] > 0
    assert utility["personas"]["hit_at_10"] >= 1.2 * utility["popularity"]["hit_at_10"]


def test_rerunning_a_day_gives_the_same_personas_and_ids(persona_home):
    columns = "persona_id, label, description, top_terms, n_memories, evidence_memory_ids"
    before = query(f"select {columns} from personas where event_date = ? order by persona_id", [LAST])
    assignments = query("select memory_id, persona_id from memory_assignments where event_date = ? order by all", [LAST])
    materialize_day(LAST)
    assert query(f"select {columns} from personas where event_date = ? order by persona_id", [LAST]) == before
    assert query(
        "select memory_id, persona_id from memory_assignments where event_date = ? order by all", [LAST]
    ) == assignments


def test_persona_ids_are_stable_from_day_to_day(persona_home):
    ids = {day: {persona_id for (persona_id,) in query("select persona_id from personas where event_date = ?", [day])}
           for day in (LAST - timedelta(days=1), LAST)}
    kept = ids[LAST] & ids[LAST - timedelta(days=1)]
    assert len(kept) >= 0.8 * len(ids[LAST])


def test_lineage_accounts_for_every_persona_and_parents_for_their_children(persona_home):
    # Every persona of a day is born, continued or split off that day, on record once.
    unaccounted = query(
        """select p.event_date, p.persona_id from personas p
           left join persona_lineage l on l.event_date = p.event_date and l.persona_id = p.persona_id and l.level = 'persona'
           where l.event is null or l.event not in ('born', 'continued', 'split_from')"""
    )
    assert unaccounted == []
    assert query("select count(*) from persona_lineage where event_date = ? and event = 'born' and level = 'persona'",
                 [START])[0][0] == query("select count(*) from personas where event_date = ?", [START])[0][0]
    assert query("select count(*) from (select event_date, level, persona_id from persona_lineage "
                 "group by all having count(*) > 1)") == [(0,)]
    # A parent's children are exactly the personas naming it, and parents never share ids with personas.
    mismatched = query(
        """select pa.event_date, pa.persona_id from persona_parents pa
           full join (select event_date, parent_persona_id as persona_id, list_sort(list(persona_id)) as children
                      from personas where parent_persona_id is not null group by all) c using (event_date, persona_id)
           where pa.child_persona_ids is distinct from c.children"""
    )
    assert mismatched == []
    assert query("select count(*) from persona_parents pa join personas p using (event_date, persona_id)") == [(0,)]


def test_the_ablation_is_tuned_on_its_own_on_the_validation_day():
    # Ten people (A) take tomorrow what only the persona term scores; ten (B) what item-kNN scores too.
    # Ten decoys score 0.5 in every component. With the persona term, persona weight 0.5 reaches
    # everyone and item-kNN is not needed; without it, item-kNN needs weight 0.5 to reach B.
    people = [f"u{index}" for index in range(20)]
    day = LAST

    def components(target: str) -> dict[str, pl.DataFrame]:
        def component(prefixes: list[str]) -> pl.DataFrame:
            rows = [(person, f"{prefix}{index}", 1.0)
                    for index, (person, prefix) in enumerate(zip(people, prefixes, strict=True))]
            rows += [(person, f"z{decoy}", 0.5) for person in people for decoy in range(10)]
            return pl.DataFrame(rows, schema=["person_id", "object_id", "score"], orient="row")

        return {
            "category_profile": component(["c"] * 20),
            "item_knn": component(["k"] * 10 + [target] * 10),
            "persona_category": component([target] * 20),
            "persona_popularity": component(["q"] * 20),
            "popularity": component(["p"] * 20),
            "static": component(["s"] * 20),
        }

    events = pl.DataFrame(
        [(person, day - timedelta(days=2), "seen") for person in people]
        + [(person, day - timedelta(days=1), f"v{index}") for index, person in enumerate(people)]
        + [(person, day, f"t{index}") for index, person in enumerate(people)],
        schema=["person_id", "event_date", "object_id"], orient="row",
    )
    _, summary, (weights, ablation_weights) = utility_for_day(events, day, components("t"), components("v"))
    assert weights == (0.5, 0.0, 0.0) and ablation_weights == (0.0, 0.5, 0.0)
    hit_at_10 = dict(summary.filter(pl.col("k") == 10).select("method", "hit_rate").rows())
    assert hit_at_10["personas"] == 1.0
    assert hit_at_10["personas_without_persona_term"] == 0.5  # the persona ranker's knn weight 0 would give 0.0
