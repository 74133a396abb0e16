"""Webhooks: subscriptions, signed deliveries with retries, a delivery log and a dead letter, off the run's path."""
