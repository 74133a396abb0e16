"""MLflow tracking of the persona model: one run and one registered version per fitted day.

`resource.MlflowTracking` points MLflow at `$PERSONAS_HOME/mlflow` (SQLite backend, file
artifacts); `fit_runs.FitLogger` logs each day's fit (parameters, quality, report, share
plot, the pyfunc `model.PersonaModel`) and registers it; `registry` moves the `champion`
alias; `drift_series` logs the drift metrics as series; `defs/monitoring/champion.py` holds
`champion_model`, the Dagster step that promotes.
"""
