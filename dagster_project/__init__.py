"""The persona platform.

MLflow otherwise sends usage events from every process that imports it (and fetches their settings from
the internet first); the platform makes no network call at run time. Set before any module imports
MLflow, which reads it at import; an operator's own setting wins.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
