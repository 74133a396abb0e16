"""What watches the personas: drift, fairness, KPIs, the champion alias and the webhooks it triggers."""
