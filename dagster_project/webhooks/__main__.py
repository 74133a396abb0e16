"""`python -m dagster_project.webhooks HOME`: deliver HOME's pending webhook events until none is left."""

import sys
from pathlib import Path

from dagster_project.webhooks.delivery import DeliveryPolicy, deliver_until_idle
from dagster_project.webhooks.store import WebhookStore, store_path

if __name__ == "__main__":
    deliver_until_idle(WebhookStore(store_path(Path(sys.argv[1]))), DeliveryPolicy.from_environment())
