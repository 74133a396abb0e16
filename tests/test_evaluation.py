"""`personas evaluate` on real homes: every key on a materialised small world, a clear answer on a bare one."""

import json
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from dagster_project.cli import main
from dagster_project.evaluation import MODEL_TABLES, UTILITY_TABLES, evaluate
from dagster_project.generator import generate
from dagster_project.paths import personas_home, truth_dir, warehouse_path
from dagster_project.science.partition_baselines import memory_truth
from pipeline_helpers import materialize_range, query, using_home

START = date(2026, 10, 1)
LAST = START + timedelta(days=3)
BASELINES = {"popularity", "category_profile", "item_knn", "static", "personas_without_persona_term"}


@pytest.fixture(scope="module")
def evaluated_home(tmp_path_factory):
    with using_home(tmp_path_factory.mktemp("evaluation")) as home:
        generate(home, days=4, people=300, events_per_day=1500, seed=3, start_date=START)
        materialize_range(START, LAST)
        yield home


def test_evaluate_returns_every_baseline_beside_the_model(evaluated_home):
    report = evaluate(evaluated_home)
    assert report["as_of"] == LAST.isoformat() and report["missing_tables"] == []
    utility = report["utility"]
    assert {"personas", *BASELINES} <= set(utility)
    assert {entry["n"] for entry in utility.values()} == {utility["personas"]["n"]} and utility["personas"]["n"] > 0
    assert all(set(entry) == {"hit_at_10", "recall_at_10", "hit_at_50", "n"} for entry in utility.values())
    for method in BASELINES:
        interval = report["utility_ci"][method]
        assert interval["low"] <= interval["difference"] <= interval["high"]
        assert interval["n"] == utility["personas"]["n"]
    assert set(report["partition_baselines"]) == {"by_category", "intent_families"}
    for scores in report["partition_baselines"].values():
        assert -1.0 <= scores["ari"] <= 1.0 and 0.0 <= scores["nmi"] <= 1.0 and scores["n_clusters"] >= 1
    assert 0.0 < report["memory_purity"] <= 1.0
    assert 0.0 < report["persona_f1_expressed"] <= 1.0
    for held_out_score in ("truthfulness", "evidence_alignment", "coverage", "quality"):
        assert 0.0 <= report[held_out_score] <= 1.0


def test_evaluate_scores_ids_over_time_and_the_hierarchy(evaluated_home):
    report = evaluate(evaluated_home)
    assert report["id_stability_pairs"] == 3 * 13  # 13 planted personas, 3 days after the first
    assert 0.8 <= report["id_stability"] <= 1.0
    assert report["distinct_persona_ids"] >= report["n_personas"]
    births = query("select count(*) from persona_lineage where level = 'persona' and event = 'born'")[0][0]
    assert report["lineage_events"]["born"] == births
    # A 4-day, 300-person world: the first day's window has 79 people, too few for two of the 13 planted
    # personas to reach five people each (`min_persona_people`), so they are born on the second day. The
    # evaluation counts those births as spurious (any birth after the first fit, outside a drift). They are the
    # first ids of planted personas that had none: over the four days the 13 ids and the 13 planted personas
    # match one to one (each id is the majority of one planted persona's memories, on every day), no id merges.
    assert report["spurious_days"] == [f"{START + timedelta(days=1)} born 2"] and report["spurious_retirements"] == 0
    ids_of_planted = planted_persona_ids()
    assert len(ids_of_planted) == 13 and all(len(ids) == 1 for ids in ids_of_planted.values())
    assert report["distinct_persona_ids"] == 13 and "merged_into" not in report["lineage_events"]
    assert "new_persona" not in report  # nor a planted new persona: tests/test_new_persona.py has one
    # The hierarchy is scored against the planted nesting (tennis fan and runner under sports fan). This small
    # world does not carry it (centroid distances of those three 0.49-0.53, of unrelated personas 0.36-0.69);
    # the default world does (recall 1.0 from its fifth day), too large for the suite.
    assert report["hierarchy_parents"] == query(
        "select count(*) from persona_parents where event_date = ?", [LAST])[0][0]
    assert 0.0 <= report["hierarchy_nesting_recall"] <= 1.0


def planted_persona_ids() -> dict[str, set[int]]:
    """Every planted persona's model ids over the days: the ids of the personas whose memories it is the
    majority of, each memory's planted persona as the evaluation reads it (`memory_truth`), ties to the
    smallest planted persona."""
    records = pl.read_parquet(truth_dir(personas_home()) / "records.parquet", columns=["record_id", "persona"])
    memory_events = pl.DataFrame(query("select memory_id, unnest(event_ids) from intent_memories"),
                                 schema=["memory_id", "record_id"], orient="row")
    assignments = pl.DataFrame(query("select event_date, memory_id, persona_id from memory_assignments"),
                               schema=["event_date", "memory_id", "persona_id"], orient="row")
    majority = (
        assignments.join(memory_truth(records.drop_nulls("record_id"), memory_events), on="memory_id")
        .group_by("event_date", "persona_id", "planted_persona_id").len()
        .sort("event_date", "persona_id", "len", "planted_persona_id", descending=[False, False, True, False])
        .group_by("event_date", "persona_id", maintain_order=True).first()
    )
    return {planted: set(ids) for planted, ids in
            majority.group_by("planted_persona_id").agg(pl.col("persona_id").unique()).iter_rows()}


def test_per_person_day_hits_match_the_daily_summary(evaluated_home):
    mismatches = query(
        """select count(*) from persona_utility as summary
           join (select event_date, method, k, avg(hit::double) as hit_rate, count(*) as n_users
                 from persona_utility_hits group by all) as hits using (event_date, method, k)
           where abs(summary.hit_rate - hits.hit_rate) > 1e-12 or summary.n_users <> hits.n_users"""
    )
    assert mismatches == [(0,)]
    assert query("select count(distinct event_date) from persona_utility_hits")[0][0] == 3  # day 1 has no personas before it


def test_cli_prints_the_whole_table(evaluated_home, capsys):
    assert main(["evaluate"]) == 0
    text = capsys.readouterr().out
    for method in ("personas", *BASELINES):
        assert method in text
    assert "CI of difference" in text and "intent_families" in text
    assert main(["evaluate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"utility", "utility_ci", "partition_baselines"} <= set(report)


def test_evaluate_names_the_tables_a_bare_home_lacks(home, capsys):
    assert evaluate(home)["missing_tables"] and evaluate(home)["as_of"] is None  # no warehouse file at all
    with duckdb.connect(str(warehouse_path(home))) as connection:
        connection.execute("create table personas (event_date date, truthfulness double, quality double)")
    report = evaluate(home)
    assert report["as_of"] is None
    assert set(report["missing_tables"]) == set(MODEL_TABLES + UTILITY_TABLES) - {"personas"}
    assert main(["evaluate"]) == 1
    assert "Missing table persona_utility" in capsys.readouterr().out
