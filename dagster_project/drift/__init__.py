"""Persona drift monitoring: the `persona_drift` table, its MLflow series and a warning check."""
