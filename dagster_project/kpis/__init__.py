"""`persona_kpis`: the three persona KPIs of each model date, with a WARN check and MLflow series."""
