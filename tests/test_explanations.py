"""Every persona says what sets it apart, in the personas table, the Dagster UI metadata and the MLflow report."""

from pathlib import Path

import mlflow

from dagster_project.tracking.fit_runs import RUN_NAME_PREFIX
from dagster_project.tracking.store import MlflowStore
from pipeline_helpers import query, using_home


def test_each_persona_has_weighted_terms_and_a_source_mix(generated_run):
    with using_home(generated_run.home):
        explanations = query("select top_terms, explanation from personas")
    assert explanations
    for top_terms, explanation in explanations:
        weights = [term["weight"] for term in explanation["terms"]]
        assert weights == sorted(weights, reverse=True) and weights[-1] > 0
        # The label is role + domain + focus; its c-TF-IDF terms are what the explanation weighs.
        assert [term["term"] for term in explanation["terms"]] == list(top_terms)
        assert {source["source"] for source in explanation["sources"]} <= {"web", "social", "crm", "iot"}
        assert all(0 < source["persona_share"] <= 1 + 1e-9 and 0 < source["population_share"] <= 1 + 1e-9
                   for source in explanation["sources"])


def test_the_ui_catalogue_and_the_mlflow_report_show_the_explanations(generated_run):
    (personas,) = [m for m in generated_run.result.asset_materializations_for_node("persona_model")
                   if m.asset_key.to_user_string() == "personas"][:1]
    assert "Why: terms " in personas.metadata["catalogue"].value
    with using_home(generated_run.home):
        tracking = MlflowStore()
        # The persona fits' runs, not the drift/KPI series run that shares the experiment.
        run = tracking.client().search_runs([tracking.activate()], f"attributes.run_name LIKE '{RUN_NAME_PREFIX} %'",
                                            order_by=["attributes.start_time DESC"])[0]
        report = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="persona_report.md",
                                                          tracking_uri=tracking.tracking_uri)).read_text()
    assert report.count("Distinguished by: terms ") == report.count("\n## ") > 0
