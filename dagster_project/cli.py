"""`personas`: generate sample data, run the graph through the local Dagster instance, report."""

import argparse
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from dagster_project.commands import add_home_command, home_of

PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def command_generate(args: argparse.Namespace) -> int:
    from dagster_project.generator import generate

    home = home_of(args)
    started = time.perf_counter()
    summary = generate(
        home,
        days=args.days,
        people=args.people,
        events_per_day=args.events_per_day,
        seed=args.seed,
        start_date=args.start_date,
        underrepresent=args.underrepresent,
        world=args.world,
        new_persona_at_drift=args.new_persona_at_drift,
    )
    print(f"Generated {args.days} days ({args.world} world) for {args.people} people under {home / 'landing'} "
          f"in {time.perf_counter() - started:.1f}s (truth in {home / 'truth'}).")
    if "records" in summary:
        print("records: " + ", ".join(f"{entity} {sum(days.values()):,}" for entity, days in summary["records"].items()))
    for key in ("broken", "drift_date"):
        if key in summary:
            print(f"{key}: {summary[key]}")
    return 0


class RangeBeforeFirstPartition(ValueError):
    """A run asked for days before the first daily partition."""


def check_range_start(home: Path, start: date) -> None:
    """Raise `RangeBeforeFirstPartition` when `start` is before the first partition this process loaded."""
    from dagster_project.partitions import daily_partitions, first_partition_day

    loaded_start = daily_partitions.start.date()
    if start < loaded_start:
        if first_partition_day(home) < loaded_start:  # older data landed after this process loaded the definitions
            raise RangeBeforeFirstPartition(f"{start} is before the first partition this process loaded "
                                            f"({loaded_start}); run the command again to load the home's new start")
        raise RangeBeforeFirstPartition(f"{start} is before the home's first data day {loaded_start}: "
                                        "land or import the older data first")


def run_partitions(home: Path, start: date, end: date, tags: dict[str, str] | None = None, verbose: bool = False):
    """Materialise every asset for [start, end] in the persisted Dagster instance; a `RangeOutcome`.

    First, holding the home's run lock, runs left behind by a crashed process are failed and
    their pool slots and MLflow runs released. Then one run over the range; if gates blocked
    some days, the persona assets that did not run run over the days between them (see
    `operations.ranges`). The terminal shows each run's progress; Dagster's event stream, the
    libraries' logs and dbt's output go to `logs/` under the home (and to the terminal when `verbose`).
    """
    from dagster_project.progress import command_log_path, logging_to_file

    with logging_to_file(command_log_path(home, f"run-{start}..{end}"), verbose) as log_file:
        return _run_partitions_logged(home, start, end, tags or {}, verbose, log_file)


def _run_partitions_logged(home: Path, start: date, end: date, tags: dict[str, str], verbose: bool, log_file):
    from dagster import DagsterInstance

    from dagster_project.definitions import defs
    from dagster_project.defs.operations.jobs import BUILD_JOB_NAME
    from dagster_project.operations.launching import execute_location_run
    from dagster_project.operations.ranges import (
        RangeOutcome,
        blocked_days,
        only_gates_failed,
        ranges_between,
        skipped_persona_assets,
        warehouse_gates_failed,
    )
    from dagster_project.operations.recovery import (
        end_fits_of_ended_runs,
        free_slots_of_ended_runs,
        home_run_lock,
        launch_tags,
        recover_crashed_runs,
        wait_for_pool,
    )
    from dagster_project.progress import StepProgress, entry_logger, output_to_log, plain_console

    check_range_start(home, start)
    job = defs.resolve_job_def(BUILD_JOB_NAME)
    console = plain_console()

    def execute(instance, first: date, last: date, asset_selection=None):
        run_tags = {**tags, **launch_tags(),
                    PARTITION_RANGE_START_TAG: first.isoformat(), PARTITION_RANGE_END_TAG: last.isoformat()}
        steps = job.get_subset(asset_selection=set(asset_selection)) if asset_selection else job
        title = f"{first}..{last}" + (" personas around blocked days" if asset_selection else "")
        with StepProgress(title, len(steps.graph.node_dict), Path(log_file.baseFilename), console, verbose) as progress:
            to_log_file = entry_logger(log_file)

            def on_event(entry) -> None:
                progress.on_entry(entry)
                to_log_file(entry)

            # Dagster's console logger streams every event to the terminal with --verbose, and is quiet otherwise.
            run_config = {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}}
            with output_to_log(log_file, verbose):
                return execute_location_run(instance, job, run_tags, run_config=run_config,
                                            asset_selection=asset_selection, on_event=on_event)

    with home_run_lock(home, f"personas run {start}..{end}"), DagsterInstance.get() as instance:
        def recover() -> None:
            for crashed in recover_crashed_runs(instance, home):
                print(f"Recovered run {crashed.run_id} of dead process {crashed.pid}: marked failed, pool slots freed, "
                      f"{crashed.mlflow_runs_ended} MLflow run(s) ended as FAILED.", file=sys.stderr)
            for run_id, status in free_slots_of_ended_runs(instance):
                print(f"Freed the pool slots run {run_id} still held after it ended ({status}).", file=sys.stderr)
            for run_id, count in end_fits_of_ended_runs(instance, home).items():
                print(f"Ended as FAILED {count} MLflow run(s) that run {run_id} left RUNNING when it ended.",
                      file=sys.stderr)

        wait_for_pool(instance, recover=recover)
        outcome = RangeOutcome(execute(instance, start, end))
        if outcome.first_run.success or not only_gates_failed(outcome.first_run):
            return outcome
        outcome.blocked = blocked_days(outcome.first_run)
        asset_graph = defs.resolve_asset_graph()
        outcome.warehouse_gates = warehouse_gates_failed(outcome.first_run, asset_graph)
        selection = skipped_persona_assets(outcome.first_run, asset_graph)
        if not outcome.blocked or not selection:
            return outcome
        for first, last in ranges_between(start, end, set(outcome.blocked)):
            outcome.reruns.append((first, last, execute(instance, first, last, asset_selection=selection)))
    return outcome


def blocked_summary(outcome) -> str:
    """The blocked days, the gates that blocked them, and the command that reruns each; '' when none."""
    from dagster_project.summary import rerun_commands

    if not outcome.blocked:
        return ""

    def kept(gates: list[str]) -> str:
        if outcome.warehouse_gates.intersection(gates):
            return ("its warehouse rows are kept, failing ones included; memories and personas not rebuilt "
                    "(an earlier run's, if any, are kept and stale)")
        return ("the gated table's rows are kept, failing ones included; what depends on them not rebuilt "
                "(an earlier run's, if any, are kept and stale)")

    lines = [f"Blocked by a gate: {', '.join(map(str, sorted(outcome.blocked)))}"]
    lines += [f"  {day}: {', '.join(sorted(gates))}: {kept(gates)}" for day, gates in sorted(outcome.blocked.items())]
    lines += [f"  personas for {first}..{last}: {'built' if result.success else 'FAILED'} (run {result.run_id})"
              for first, last, result in outcome.reruns]
    lines += [f"  fix the day's data, then rerun: {command}" for command in rerun_commands(list(outcome.blocked))]
    return "\n".join(lines)


def check_summary(result) -> str:
    """The run's asset checks: every GX gate and problem by name, the dbt tests as a count."""
    from dagster import AssetCheckSeverity

    def status(evaluation) -> str:
        if evaluation.passed:
            return "passed"
        return "WARNING" if evaluation.severity == AssetCheckSeverity.WARN else "FAILED"

    def detail(evaluation) -> str:
        keys = ("warned_expectations", "warned_partitions") if status(evaluation) == "WARNING" else (
            "failed_expectations", "failed_partitions")
        shown = [str(evaluation.metadata[key].value)[:300] for key in keys if key in evaluation.metadata]
        if not shown and "breached_days" in evaluation.metadata:  # drift, KPIs, fairness: the days and what breached
            shown.append(str(evaluation.metadata["breached_days"].value)[:300])
        return f" ({'; '.join(shown)})" if shown and not evaluation.passed else ""

    # gates, drift, KPIs and fairness record each day: one line per check
    from dagster_project.summary import day_check_verdicts, gate_verdicts

    evaluations = sorted(day_check_verdicts(gate_verdicts(result.get_asset_check_evaluations())),
                         key=lambda e: (e.passed, e.check_name))
    named = [e for e in evaluations if not e.passed or e.check_name.startswith("gx_")]
    dbt_tests = [e for e in evaluations if e.passed and not e.check_name.startswith("gx_")]
    counts = {label: sum(status(e) == label for e in evaluations) for label in ("passed", "WARNING", "FAILED")}
    lines = [f"  {status(e):>7}  {e.asset_key.to_user_string()}: {e.check_name}{detail(e)}" for e in named]
    lines.append(f"   passed  {len(dbt_tests)} other checks (dbt tests, drift, fairness)")
    return (f"Checks: {counts['passed']} passed, {counts['FAILED']} failed, {counts['WARNING']} warnings\n"
            + "\n".join(lines))


def command_run(args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException

    from dagster_project.review.actions import WarehouseBusy, champion_status
    from dagster_project.summary import persona_catalogue, warehouse_summary

    home = home_of(args)
    end = args.end or args.start
    started = time.perf_counter()
    try:
        result = run_partitions(home, args.start, end, verbose=args.verbose)
    except RangeBeforeFirstPartition as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ok = result.success and not result.blocked
    verdict = "succeeded" if ok else "succeeded except blocked days" if result.success else "FAILED"
    print(f"Run {args.start}..{end} {verdict} in {time.perf_counter() - started:.1f}s.")
    print(warehouse_summary(home))
    print(check_summary(result))
    if result.blocked:
        print(blocked_summary(result))
    if result.success:  # the personas are what a user who imported a log ran it for
        print("\n" + persona_catalogue(home))
        try:
            print("\n" + champion_status(home))
        except (WarehouseBusy, MlflowException) as error:  # the run itself succeeded: say so, not a traceback
            print(f"\nChampion model: not read ({error}); `personas review list` shows it later.")
    return 0 if ok else 1


def command_import(args: argparse.Namespace) -> int:
    from dagster_project.ingest.importer import ImportFileError, import_log
    from dagster_project.progress import plain_console

    home = home_of(args)
    try:
        with plain_console().status(f"Importing {args.events} and {args.items}"):  # a spinner on a terminal only
            report = import_log(home, Path(args.events), Path(args.items), args.source, replace=args.replace)
    except ImportFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Read {report.rows} rows of {args.events}: landed {report.landed} as batch {report.batch} of source "
          f"'{report.source}' in {len(report.days)} daily files under {home / 'landing' / 'import' / 'events'}.")
    if report.rejected:
        reasons = ", ".join(f"{count} {reason}" for reason, count in report.rejected.items())
        print(f"Rejected at import {sum(report.rejected.values())} rows no run could take ({reasons}); "
              f"each with its line and reason in {report.rejects_file}.")
    if report.unknown_objects:
        print(f"{report.unknown_objects} landed rows name an object missing from the items file: staging rejects them "
              "with their file:line (see rejected_events).")
    if report.replaced_days:
        print(f"--replace removed earlier batches of '{report.source}' from {len(report.replaced_days)} more days.")
    days = sorted(set(report.days) | set(report.replaced_days))
    if days:
        print(f"Next: personas run --start {days[0]} --end {days[-1]}")
    return 0


def _print_evaluation(report: dict) -> None:
    def number(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    for table in report.get("missing_tables", []):
        print(f"Missing table {table}: never materialised in this home, its part of the report is n/a.")
    if report["as_of"] is None:
        print("No fitted personas to evaluate: materialise the persona model first (`personas run`).")
        return
    print(f"Evaluation as of {report['as_of']}: {report['n_personas']} personas, "
          f"ARI {number(report['ari'])}, NMI {number(report['nmi'])}, persona F1 {number(report['persona_f1'])} "
          f"(over expressed personas {number(report.get('persona_f1_expressed'))}), "
          f"label-term precision {number(report['label_term_precision'])}")
    print(f"  quality on held-out member memories: truthfulness {number(report['truthfulness'])}, "
          f"evidence alignment {number(report.get('evidence_alignment'))}, coverage {number(report.get('coverage'))}, "
          f"quality {number(report['quality'])}")
    if report.get("id_stability") is not None:
        events = ", ".join(f"{event} {count}" for event, count in (report.get("lineage_events") or {}).items())
        print(f"  persona ids over days: stability {number(report['id_stability'])} over {report['id_stability_pairs']} "
              f"(planted persona, day) pairs, {report['distinct_persona_ids']} distinct ids; lineage {events or 'none'}; "
              f"births {report['spurious_births']} and retirements {report['spurious_retirements']} outside the drift days")
    if report.get("new_persona_id") is not None:
        on_time = "on time" if report["new_persona_born_on_time"] else "NOT born within 2 days"
        print(f"  planted new persona {report['new_persona']} (drift day {report['new_persona_planted_on']}): persona "
              f"{report['new_persona_id']} \"{report['new_persona_label']}\", {report['new_persona_birth_event']} on "
              f"{report['new_persona_born_on']} ({report['new_persona_birth_lag_days']:+d} days): {on_time}; holds "
              f"{number(report['new_persona_recall'])} of its memories; other births near the drift "
              f"{report['other_births_near_drift']}")
    if report.get("hierarchy_parents") is not None:
        print(f"  hierarchy: {report['hierarchy_parents']} parent personas, planted nesting recall "
              f"{number(report.get('hierarchy_nesting_recall'))}, "
              f"sibling precision {number(report.get('hierarchy_sibling_precision'))}")
    if report.get("partition_baselines"):
        print(f"  memory partitions vs truth (mean memory purity {number(report.get('memory_purity'))}):")
        print(f"    {'model':<16} ARI {number(report['ari'])}  NMI {number(report['nmi'])}  "
              f"({report['n_personas']} personas)")
        for name, scores in report["partition_baselines"].items():
            print(f"    {name:<16} ARI {number(scores['ari'])}  NMI {number(scores['nmi'])}  "
                  f"({scores['n_clusters']} clusters)")
    if report["utility"]:
        print("  next-day utility, same people and days; CI: paired bootstrap 95% over people "
              "(each person's days together) of personas minus the method, Hit@10")
        print(f"    {'method':<30} {'Hit@10':>6} {'Recall@10':>9} {'Hit@50':>6} {'n':>7}  CI of difference")
        ranked = sorted(report["utility"].items(), key=lambda item: -(item[1]["hit_at_10"] or 0.0))
        for method, scores in ranked:
            interval = report.get("utility_ci", {}).get(method)
            ci = ("" if interval is None else
                  f"{interval['difference']:+.3f} [{interval['low']:+.3f}, {interval['high']:+.3f}]")
            print(f"    {method:<30} {number(scores['hit_at_10']):>6} {number(scores['recall_at_10']):>9} "
                  f"{number(scores['hit_at_50']):>6} {scores['n'] or 0:>7}  {ci}")


def command_evaluate(args: argparse.Namespace) -> int:
    import duckdb

    from dagster_project.evaluation import evaluate

    try:
        report = evaluate(home_of(args), args.start, args.end)
    except duckdb.IOException as error:  # still locked after the wait
        print(f"The warehouse is busy (a run is writing it?); try again when it ends: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_evaluation(report)
    return 0 if report["as_of"] else 1


def command_docs(args: argparse.Namespace) -> int:
    from dagster_project.quality.gx_runner import build_data_docs

    index = build_data_docs(home_of(args))
    print(f"Great Expectations Data Docs (latest validation per suite): {index}")
    return 0


def command_init(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from dagster_project.tracking.store import MlflowStore

    home = home_of(args)
    with DagsterInstance.get() as instance:  # creates its storage now, before any parallel runs race to
        instance.get_runs(limit=1)
    MlflowStore().activate()  # likewise the MLflow tables and experiment (1.4 s of migrations, once)
    print(f"PERSONAS_HOME={home}\nDAGSTER_HOME={home / 'dagster'}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """Sample data, the whole graph over every generated day, and what came out of it."""
    from dagster_project.evaluation import evaluate
    from dagster_project.review.actions import champion_status
    from dagster_project.summary import persona_catalogue, warehouse_summary

    started = time.perf_counter()
    command_generate(args)
    home = home_of(args)
    last = args.start_date + timedelta(days=args.days - 1)
    run_started = time.perf_counter()
    result = run_partitions(home, args.start_date, last, verbose=args.verbose)
    ok = result.success
    print(f"\nMaterialised {args.start_date}..{last} through Dagster "
          f"{'successfully' if ok else 'WITH FAILURES'} in {time.perf_counter() - run_started:.1f}s.\n")
    print(warehouse_summary(home))
    print("\n" + check_summary(result))
    if result.blocked:
        print(blocked_summary(result))
    print("\n" + persona_catalogue(home))
    print("\n" + champion_status(home))
    report = evaluate(home)
    if report["as_of"]:
        print()
        _print_evaluation(report)
    if report.get("identity_precision") is not None:
        print(
            f"Identity stitching vs planted persons: pairwise precision {report['identity_precision']:.4f}, "
            f"recall {report['identity_recall']:.4f} over {report['identifiers_scored']} identifiers."
        )
    print(f"\nDemo finished in {time.perf_counter() - started:.1f}s.")
    print("Open the Dagster UI over this home with `make ui` (http://127.0.0.1:3000): "
          "runs, materialisations, lineage and partitions of this demo are there.")
    return 0 if ok else 1


def command_scale_demo(args: argparse.Namespace) -> int:
    """The demo's sample through the embedded and the production profile, with a PostgreSQL server started here
    for the production home's Dagster and MLflow; the warehouses' tables and the catalogues compared."""
    from dagster_project.deploy.local_postgres import ensure_postgres, running_postgres
    from dagster_project.deploy.scale_demo import comparison_lines, run_both_profiles
    from dagster_project.paths import personas_home

    try:
        import dagster_postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        print("error: the production profile needs the `scale` extra: pip install -e '.[scale]'", file=sys.stderr)
        return 2
    reason = ensure_postgres()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    root = (Path(args.home) if args.home else personas_home()) / "scale-demo"
    options = {"days": args.days, "people": args.people, "events_per_day": args.events_per_day, "seed": args.seed,
               "start_date": args.start_date, "underrepresent": args.underrepresent, "world": args.world,
               "new_persona_at_drift": args.new_persona_at_drift}
    with running_postgres() as server:
        print(f"PostgreSQL started on 127.0.0.1:{server.port} (a throwaway cluster in {server.data_dir}, "
              "removed at the end).")
        embedded, production = run_both_profiles(
            root, options, server.create_database("dagster"), server.create_database("mlflow"), args.verbose)
        dagster_runs = server.query("dagster", "select status, count(*) from runs group by 1 order by 1")
        fit_runs = server.query("mlflow", "select count(*) from runs")[0][0]
        versions = server.query("mlflow", "select count(*) from model_versions")[0][0]
    print()
    for run in (embedded, production):
        where = ("Dagster and MLflow in SQLite under the home" if run.profile == "embedded"
                 else "Dagster and MLflow in PostgreSQL")
        print(f"{run.profile:>10} profile ({where}): {'succeeded' if run.success else 'FAILED'} in "
              f"{run.seconds:.1f}s, home {run.home}")
    print(f"PostgreSQL held the production home's {', '.join(f'{n} {status}' for status, n in dagster_runs)} "
          f"Dagster run(s), {fit_runs} MLflow run(s) and {versions} model version(s).")
    print("\nWarehouse tables, production against embedded (rows; an order-free hash of every row):")
    print("\n".join(comparison_lines(embedded, production)))
    same = embedded.checksums == production.checksums and embedded.catalogue == production.catalogue
    print(f"\n{production.catalogue}\n")
    print("The catalogue above is " + ("identical to the embedded run's." if same else
                                        "NOT the embedded run's:\n\n" + embedded.catalogue))
    print("Days ran one after another in both homes: the warehouse is one DuckDB file, so its pool has one slot "
          "(docs/scale.md).")
    return 0 if same and embedded.success and production.success else 1


def command_backfill(args: argparse.Namespace) -> int:
    """A Dagster asset backfill of every asset over exactly the days [start, end] (the UI's "Launch backfill"
    would also add every later persona fit whose window holds those days).

    The daemon executes it: every asset has `BackfillPolicy.single_run()`, so the days go in one
    run per step of the graph (one dbt build, one DuckDB write per table) rather than a run per
    day queueing on the one-writer pool. The Backfills tab lists it, and re-executes its failed
    partitions. `--wait` runs a daemon for the home when none is running and follows the backfill.
    """
    from dagster_project.progress import command_log_path, logging_to_file

    home = home_of(args)
    if args.end < args.start:
        print(f"error: --end {args.end} is before --start {args.start}", file=sys.stderr)
        return 2
    with logging_to_file(command_log_path(home, f"backfill-{args.start}..{args.end}"), verbose=False):
        return _launch_backfill(home, args)


def _launch_backfill(home: Path, args: argparse.Namespace) -> int:
    from dagster import DagsterInstance
    from dagster._core.execution.backfill import BulkActionStatus

    from dagster_project.definitions import defs
    from dagster_project.operations.launching import (
        IN_PROCESS,
        daemon_for,
        daemon_is_running,
        launch_asset_backfill,
        wait_for_backfill,
    )
    from dagster_project.progress import command_log_path

    try:
        check_range_start(home, args.start)
    except RangeBeforeFirstPartition as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    asset_graph = defs.resolve_asset_graph()
    with DagsterInstance.get() as instance:
        # In-process steps: one process per run, not one per step re-loading the code location.
        backfill_id = launch_asset_backfill(instance, asset_graph, sorted(asset_graph.materializable_asset_keys),
                                            args.start, args.end, run_config=IN_PROCESS)
        print(f"Backfill {backfill_id} of {args.start}..{args.end} ({(args.end - args.start).days + 1} days) "
              f"added to {instance.root_directory}.")
        if not args.wait:
            watched = "the running daemon executes it" if daemon_is_running(instance) else (
                "no daemon is running for this home: start one (`make ui` runs one) or pass --wait")
            print(f"Watch it in the UI's Backfills tab (`make ui`, http://127.0.0.1:3000/runs/b/{backfill_id}); "
                  f"{watched}.")
            return 0
        started = time.perf_counter()

        def report(state) -> None:
            print(f"  {time.perf_counter() - started:6.1f}s  {state.status.value}: {state.materialized} of "
                  f"{state.target} asset partitions materialised, {state.failed} failed, {state.left} left; "
                  f"{state.runs} runs", flush=True)

        log_path = command_log_path(home, f"daemon-{args.start}..{args.end}")
        with daemon_for(home, log_path) as daemon:
            print("Daemon: " + (f"started dagster-daemon (pid {daemon.pid}, log {log_path})" if daemon else
                                "the one already running for this home"), flush=True)
            try:
                state = wait_for_backfill(instance, asset_graph, backfill_id, report, daemon)
            except RuntimeError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
    print(f"Backfill {backfill_id} {state.status.value} in {time.perf_counter() - started:.1f}s.")
    for day, assets in state.failed_days.items():
        print(f"  failed {day}: {', '.join(assets)}")
    if state.failed_days:
        print("Re-execute the failed partitions from the UI (Backfills tab, Re-execute), or: "
              f"personas run --start {min(state.failed_days)} --end {max(state.failed_days)}")
    return 0 if state.status is BulkActionStatus.COMPLETED_SUCCESS else 1


def command_summary(args: argparse.Namespace) -> int:
    from dagster_project.review.actions import champion_status
    from dagster_project.summary import persona_catalogue, warehouse_summary

    home = home_of(args)
    print(warehouse_summary(home))
    print("\n" + persona_catalogue(home))
    print("\n" + champion_status(home))
    return 0


FORGET_KINDS = ("person_id", "email", "cookie", "handle", "device")


def command_forget(args: argparse.Namespace) -> int:
    """Right to erasure: one person out of every table, the landing zone and every later run."""
    from dagster_project.privacy.erasure import (
        AmbiguousIdentifierError,
        PersonNotFoundError,
        WarehouseBusyError,
        forget,
    )

    home = home_of(args)
    kind, value = next((kind, getattr(args, kind)) for kind in FORGET_KINDS if getattr(args, kind))
    try:
        report = forget(home, kind, value)
    except (WarehouseBusyError, PersonNotFoundError, AmbiguousIdentifierError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Erased person {report.person_hash[:16]}… ({report.identifiers} identifiers) "
          f"at {report.erased_at:%Y-%m-%d %H:%M:%S} UTC; their identifiers are suppressed from every later load.")
    for table, rows in report.rows_deleted.items():
        print(f"  {rows:>6}  {table}")
    print(f"  {report.landing_lines_removed:>6}  landing lines removed from their files")
    for path in report.unreadable_landing_files:
        print(f"  not scanned (unreadable, refused by the raw load too): {path}", file=sys.stderr)
    if report.affected_days:
        print(f"Rerun the affected days to refit personas without them: personas run --start "
              f"{report.affected_days[0]} --end {report.affected_days[-1]}")
    return 0


def command_serve(args: argparse.Namespace) -> int:
    """The Persona API over the home's champion model and warehouse, read into memory (never held open)."""
    # A request's frames are a few rows: one Polars thread answers sooner than a pool woken for each step.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    from dagster_project.api.server import serve
    from dagster_project.api.snapshot import SnapshotUnavailable

    try:
        serve(home_of(args), args.host, args.port, args.poll_seconds)
    except SnapshotUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def command_bench_api(args: argparse.Namespace) -> int:
    """POST latency against `personas serve` on this home; a home without a champion gets the sample data first."""
    from dagster_project.api.bench import benchmark_post_latency, champion_day

    home = home_of(args)
    if champion_day(home) is None:
        print(f"No champion model under {home}: generating and running the sample data first.")
        command_generate(args)
        last = args.start_date + timedelta(days=args.days - 1)
        if not run_partitions(home, args.start_date, last, verbose=args.verbose).success:
            return 1
    report = benchmark_post_latency(home, args.requests, args.events)
    print(f"{report['route']} with {report['events_per_request']} events, {report['requests']} requests over one "
          f"keep-alive connection: p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, p99 {report['p99_ms']} ms")
    print(json.dumps(report))
    return 0


def _region_and_persona(text: str) -> tuple[str, str]:
    region, separator, persona = text.partition(":")
    if not (region and separator and persona):
        raise argparse.ArgumentTypeError(f"expected REGION:PERSONA such as north:runner, got {text!r}")
    return region, persona


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        return add_home_command(commands, name, handler, help_text)

    def add_generator_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--days", type=int, default=14)
        command.add_argument("--people", type=int, default=2000)
        command.add_argument("--events-per-day", type=int, default=6000)
        command.add_argument("--seed", type=int, default=7)
        command.add_argument("--start-date", type=date.fromisoformat, default=date(2026, 10, 1))
        command.add_argument("--underrepresent", metavar="REGION:PERSONA", type=_region_and_persona,
                             help="plant a fairness problem: nobody of REGION holds PERSONA, e.g. north:runner")
        command.add_argument("--world", choices=("realistic", "easy"), default="realistic",
                             help="realistic (default: shared categories, noise, intent switches, light users) "
                                  "or easy (every category names its persona: a fast test fixture)")
        command.add_argument("--new-persona-at-drift", action="store_true",
                             help="plant a persona nobody holds before the drift day, taken up on it "
                                  "(truth/manifest.json names it and its birth day)")

    def add_verbose(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--verbose", action="store_true",
                             help="stream Dagster's events and the libraries' logs to the terminal as well "
                                  "(always written to PERSONAS_HOME/logs/)")
        return command

    add_generator_options(add("generate", command_generate,
                              "Write realistic multi-source sample logs with a planted truth."))
    add_generator_options(add_verbose(add("demo", command_demo,
                                          "Generate sample data, run every day through Dagster, summarise.")))
    add_generator_options(add_verbose(add(
        "scale-demo", command_scale_demo,
        "The demo's sample through the embedded and the production profile (a local PostgreSQL), in HOME/scale-demo "
        "(rebuilt each time); tables compared.")))
    add("init", command_init, "Create PERSONAS_HOME and its Dagster instance.")
    add("docs", command_docs, "Build the Great Expectations Data Docs site under PERSONAS_HOME/gx.")

    importer = add("import", command_import, "Land your own event log (CSV or Parquet) as an extra source.")
    importer.add_argument("--events", required=True, help="columns person_id, timestamp, object_id, action")
    importer.add_argument("--items", required=True, help="columns object_id, title, categories ('|' or space separated)")
    importer.add_argument("--source", default="import",
                          help="source name in fct_events (default: import; not web, social, crm or iot)")
    importer.add_argument("--replace", action="store_true",
                          help="remove every earlier import of this source first (by default imports add up)")

    evaluation = add("evaluate", command_evaluate, "Persona quality, agreement with the planted truth, next-day utility.")
    evaluation.add_argument("--start", type=date.fromisoformat, help="first day of the utility average")
    evaluation.add_argument("--end", type=date.fromisoformat, help="model date to evaluate (default: the latest)")
    evaluation.add_argument("--json", action="store_true", help="print one JSON object")

    run = add_verbose(add("run", command_run, "Materialise the whole graph for a day or a range of days."))
    run.add_argument("--start", type=date.fromisoformat, required=True)
    run.add_argument("--end", type=date.fromisoformat, help="last day, inclusive (default: --start)")

    backfill = add("backfill", command_backfill, "A Dagster asset backfill of a range of days, run by the daemon.")
    backfill.add_argument("--start", type=date.fromisoformat, required=True)
    backfill.add_argument("--end", type=date.fromisoformat, required=True)
    backfill.add_argument("--wait", action="store_true",
                          help="run a daemon for the home if none runs, show progress until the backfill ends, "
                               "exit 1 and name the failed partitions if it fails")

    add("summary", command_summary, "Print what the warehouse holds.")

    serve = add("serve", command_serve, "Serve the Persona API (catalogue, people's personas, posted events).")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--poll-seconds", type=float, default=30.0,
                       help="how often to look for a new warehouse or champion to reload (default 30)")

    bench_api = add_verbose(add("bench-api", command_bench_api, "Latency (p50/p95/p99) of the API's POST of new events."))
    bench_api.add_argument("--requests", type=int, default=200, help="timed requests (default 200)")
    bench_api.add_argument("--events", type=int, default=20, help="events per request (default 20)")
    add_generator_options(bench_api)

    forget = add("forget", command_forget, "Erase one person from every table, the landing zone and future runs.")
    whom = forget.add_mutually_exclusive_group(required=True)
    whom.add_argument("--person-id", dest="person_id", help="stitched person id (p-…)")
    whom.add_argument("--email", help="the person's email as the CRM sent it")
    whom.add_argument("--cookie", help="a web cookie id of the person")
    whom.add_argument("--handle", help="the person's social handle (with or without @)")
    whom.add_argument("--device", help="an IoT device id of the person")

    from dagster_project.review.cli import add_review_commands

    add_review_commands(commands)
    from dagster_project.webhooks.cli import add_webhook_commands

    add_webhook_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
