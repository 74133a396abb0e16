"""`personas webhooks add|list|remove|deliver|log`: manage subscriptions and see what was delivered."""

import argparse
import secrets
import sys

from dagster_project.commands import add_home_command, home_of
from dagster_project.webhooks.delivery import DeliveryPolicy, deliver_until_idle
from dagster_project.webhooks.store import EVENT_TYPES, WebhookStore, store_path


def _store(args: argparse.Namespace) -> WebhookStore:
    home = home_of(args)
    return WebhookStore(store_path(home))


def command_add(args: argparse.Namespace) -> int:
    secret = args.secret or secrets.token_hex(32)
    try:
        subscription_id = _store(args).add(args.url, [e.strip() for e in args.events.split(",") if e.strip()], secret)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Webhook {subscription_id}: {args.events} -> {args.url}")
    if not args.secret:
        print(f"Signing secret (shown once; verify X-Personas-Signature with it): {secret}")
    return 0


def command_list(args: argparse.Namespace) -> int:
    store = _store(args)
    counts = {(row[0], row[1]): row[2] for row in store.query(
        "select subscription_id, status, count(*) from webhook_outbox group by subscription_id, status")}
    for subscription in store.subscriptions():
        tally = ", ".join(f"{counts.get((subscription.id, status), 0)} {status}"
                          for status in ("delivered", "pending", "dead"))
        print(f"{subscription.id}  {subscription.url}  {','.join(subscription.events)}  ({tally})")
    return 0


def command_remove(args: argparse.Namespace) -> int:
    if not _store(args).remove(args.id):
        print(f"error: no webhook {args.id}", file=sys.stderr)
        return 2
    print(f"Removed webhook {args.id} and its undelivered events.")
    return 0


def command_deliver(args: argparse.Namespace) -> int:
    """Deliver now in the foreground: after an outage, or where no run starts a deliverer."""
    store = _store(args)
    deliver_until_idle(store, DeliveryPolicy.from_environment(), max_seconds=args.max_seconds)
    (pending,) = store.query("select count(*) from webhook_outbox where status = 'pending'")[0]
    print(f"{pending} deliveries still pending.")
    return 0


def command_log(args: argparse.Namespace) -> int:
    store = _store(args)
    for row in store.query("select datetime(attempted_at, 'unixepoch'), event, url, attempt, status, http_status, "
                           "round(latency_ms, 1), idempotency_key, error from webhook_deliveries "
                           "order by attempted_at desc limit ?", [args.limit]):
        print("  ".join("" if value is None else str(value) for value in row))
    for key, url, event, attempts, error in store.query(
            "select idempotency_key, url, event, attempts, last_error from webhook_dead_letters"):
        print(f"DEAD  {event} {key} -> {url} after {attempts} attempts: {error}")
    return 0


def add_webhook_commands(commands) -> None:
    """Add `webhooks` and its subcommands to the `personas` subparsers."""
    webhooks = commands.add_parser("webhooks", help="Webhook subscriptions and deliveries.",
                                   description="Webhook subscriptions and deliveries.")
    actions = webhooks.add_subparsers(dest="webhook_command", required=True)

    def action(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        return add_home_command(actions, name, handler, help_text)

    add = action("add", command_add, "Subscribe a URL to event types; deliveries are signed with the secret.")
    add.add_argument("url")
    add.add_argument("--events", required=True, help=f"comma-separated, of: {', '.join(EVENT_TYPES)}")
    add.add_argument("--secret", help="HMAC-SHA256 signing secret (default: a random one, printed once); "
                                      "stored as given in PERSONAS_HOME/webhooks.sqlite (mode 0600)")
    action("list", command_list, "List subscriptions with their delivered, pending and dead events.")
    remove = action("remove", command_remove, "Remove a subscription.")
    remove.add_argument("id", type=int)
    deliver = action("deliver", command_deliver, "Deliver pending events now, retrying as the policy says.")
    deliver.add_argument("--max-seconds", type=float, default=120.0, help="stop retrying after this long (default 120)")
    log = action("log", command_log, "The latest delivery attempts and the dead letters.")
    log.add_argument("--limit", type=int, default=20)
