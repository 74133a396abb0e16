"""Declarative automation: downstream assets rerun when an upstream partition updates.

Unlike `AutomationCondition.eager()`, this is not limited to the latest partition: a
changed landing file of an old day reruns that day, and the persona fits whose window
contains it. It waits for in-progress parents and is held back where a parent's
blocking data-quality check failed. (Dagster's `all_deps_blocking_checks_passed` would
also hold a persona fit back for every day of its 28-day window that has no checked
partition, such as the days before the data starts; "no failed gate" is the intent.)
A gate requested in the same tick as its asset stops the children inside that run.
"""

from dagster import AutomationCondition

no_failed_upstream_gate = ~AutomationCondition.any_deps_match(
    AutomationCondition.any_checks_match(AutomationCondition.check_failed(), blocking_only=True)
).with_label("no_failed_upstream_gate")

rerun_on_upstream_change = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
    & no_failed_upstream_gate
).with_label("rerun_on_upstream_change")
