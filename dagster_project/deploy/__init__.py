"""Deployment profiles: the embedded default and the PostgreSQL-backed production profile (docs/scale.md)."""

from dagster_project.deploy.profile import Profile, ProfileError, active_profile, required_url, write_dagster_yaml

__all__ = ["Profile", "ProfileError", "active_profile", "required_url", "write_dagster_yaml"]
