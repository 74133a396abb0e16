"""`personas label …` and `personas review …`: the human side of persona changes."""

import argparse
import getpass
import sys
from datetime import date

from dagster_project.commands import add_home_command, home_of


def _who(args: argparse.Namespace) -> str:
    """`--by`, else the OS user; resolved when a command runs, so a user without a passwd entry can still run
    every other command."""
    if args.by:
        return args.by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

def _reported(action):
    """Run an action; a `ReviewError` or a busy warehouse is one line on stderr and exit status 2."""
    def handler(args: argparse.Namespace) -> int:
        from dagster_project.review.actions import WarehouseBusy
        from dagster_project.review.store import ReviewError

        try:
            return action(args)
        except (ReviewError, WarehouseBusy) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return handler


@_reported
def command_label_set(args: argparse.Namespace) -> int:
    from dagster_project.review.actions import set_label

    rows = set_label(home_of(args), args.persona_id, args.label, _who(args))
    print(f"Persona {args.persona_id} is labelled {args.label!r} by {_who(args)} on {rows} model date(s); "
          "every later fit keeps it (its computed label stays in `computed_label`).")
    return 0


@_reported
def command_label_clear(args: argparse.Namespace) -> int:
    from dagster_project.review.actions import set_label

    rows = set_label(home_of(args), args.persona_id, None, _who(args))
    print(f"Persona {args.persona_id} shows its computed label again on {rows} model date(s) (cleared by {_who(args)}).")
    return 0


@_reported
def command_label_list(args: argparse.Namespace) -> int:
    from dagster_project.review.actions import label_history

    history = label_history(home_of(args))
    if history.is_empty():
        print("No human label was ever set.")
    for row in history.iter_rows(named=True):
        what = repr(row["label"]) if row["label"] is not None else "cleared"
        print(f"  {row['set_at']:%Y-%m-%d %H:%M:%S} UTC  persona {row['persona_id']}: {what} by {row['set_by']}")
    return 0


@_reported
def command_review_list(args: argparse.Namespace) -> int:
    from dagster_project.review.actions import review_lines

    print("\n".join(review_lines(home_of(args))))
    return 0


def _decide(status: str):
    @_reported
    def command(args: argparse.Namespace) -> int:
        from dagster_project.review.actions import decide_day, decide_days

        decisions = (decide_days(home_of(args), args.day, args.through, status, _who(args)) if args.through
                     else [decide_day(home_of(args), args.day, status, _who(args))])
        for decision in decisions:
            print(f"Review of {decision.review.day} (version {decision.review.version}) {status} by {_who(args)}.")
            for day, promotion in decision.promotions.items():
                print(f"  {day}: version {promotion.version} {promotion.decision}: {promotion.reason}")
        print(f"Champion: {decisions[-1].champion}")
        return 0
    return command


def add_review_commands(commands) -> None:
    """Adds `label` and `review` to the `personas` parser's subcommands (`commands`: its subparsers action)."""
    def add_by(command: argparse.ArgumentParser) -> None:
        command.add_argument("--by", help="who decides (default: the OS user)")

    label = commands.add_parser("label", help="Human labels of persona ids, kept across days.",
                                description="Human labels of persona ids, kept across days.")
    labels = label.add_subparsers(dest="label_command", required=True)
    setter = add_home_command(labels, "set", command_label_set, "Label a persona id; the computed label stays beside it.")
    setter.add_argument("persona_id", type=int)
    setter.add_argument("label")
    add_by(setter)
    clearer = add_home_command(labels, "clear", command_label_clear, "Show the computed label of a persona id again.")
    clearer.add_argument("persona_id", type=int)
    add_by(clearer)
    add_home_command(labels, "list", command_label_list, "Every human label set or cleared, with who and when.")

    review = commands.add_parser("review", help="Drift reviews that hold the champion model.",
                                 description="Drift reviews that hold the champion model: a day whose drift "
                                 "breached its thresholds, and every day after it, waits for approval.")
    reviews = review.add_subparsers(dest="review_command", required=True)
    add_home_command(reviews, "list", command_review_list, "The champion, every drift review and the days held behind them.")
    for status, verb, help_text in (
        ("approved", "approve", "Approve DAY's drift: the champion moves to it and the clean days held after it."),
        ("rejected", "reject", "Reject DAY's drift: the champion stays; later days wait until DAY is refit."),
    ):
        decide = add_home_command(reviews, verb, _decide(status), help_text)
        decide.add_argument("day", type=date.fromisoformat, metavar="DAY")
        decide.add_argument("--through", type=date.fromisoformat, metavar="LAST",
                            help=f"{verb} every pending review from DAY through LAST, in date order "
                            "(the reviews a backfilled history opened)")
        add_by(decide)
