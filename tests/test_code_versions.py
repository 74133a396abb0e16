"""Each asset's code version is a hash of the source it runs (dagster_project/code_version.py), so a change to
its science marks it stale in Dagster, and a change elsewhere does not."""

import subprocess
import sys

from dagster import AssetKey, AssetsDefinition

from dagster_project import code_version as versions
from dagster_project.definitions import defs

PERSONAS_MODULE = "dagster_project.defs.personas.assets"
KPIS_MODULE = "dagster_project.defs.monitoring.kpis"


def _code_versions() -> dict[AssetKey, str | None]:
    return {key: version for assets in defs.assets if isinstance(assets, AssetsDefinition)
            for key, version in assets.code_versions_by_key.items()}


def _with_changed_source(monkeypatch, changed_module: str) -> None:
    """As if `changed_module`'s file had one more line; the files on disk stay as they are."""
    original = versions.module_source
    monkeypatch.setattr(versions, "module_source",
                        lambda name: original(name) + ("\n# changed\n" if name == changed_module else ""))


def test_the_assets_carry_the_version_of_the_code_they_run():
    loaded = _code_versions()
    persona_version = versions.code_version(PERSONAS_MODULE)
    assert {loaded[AssetKey(key)] for key in ("intent_memories", "personas", "user_personas", "persona_utility")} == {
        persona_version}
    assert loaded[AssetKey("persona_kpis")] == versions.code_version(KPIS_MODULE) != persona_version
    assert loaded[AssetKey(["raw", "web__events"])] == versions.code_version("dagster_project.defs.ingest.assets")
    assert "dagster_project.science.daily" in versions.hashed_modules(PERSONAS_MODULE)


def test_changing_a_science_module_changes_the_versions_of_the_assets_that_run_it(monkeypatch):
    before = {module: versions.code_version(module) for module in (PERSONAS_MODULE, KPIS_MODULE)}
    _with_changed_source(monkeypatch, "dagster_project.science.clustering")  # imported by science.daily
    assert versions.code_version(PERSONAS_MODULE) != before[PERSONAS_MODULE]
    assert versions.code_version(KPIS_MODULE) == before[KPIS_MODULE]  # the KPIs never run the clustering


def test_plumbing_outside_the_computing_packages_changes_no_version(monkeypatch):
    before = versions.code_version(PERSONAS_MODULE)
    _with_changed_source(monkeypatch, "dagster_project.paths")
    assert versions.code_version(PERSONAS_MODULE) == before


def test_the_version_is_the_same_in_a_fresh_process():
    probe = f"from dagster_project.code_version import code_version; print(code_version({PERSONAS_MODULE!r}))"
    fresh = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert fresh == versions.code_version(PERSONAS_MODULE)
