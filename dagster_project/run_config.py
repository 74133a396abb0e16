"""Launchpad config made from a science settings dataclass, so every knob is declared once.

The science modules hold their knobs as frozen dataclasses (no Dagster import there); the
assets expose the same fields, with the same types and defaults, as Dagster `Config`.
"""

from dataclasses import fields
from typing import Any, TypeVar, get_type_hints

from dagster import Config
from pydantic import create_model

Settings = TypeVar("Settings")


def config_from_settings(name: str, settings_type: type, description: str, **extra_fields: Any) -> type[Config]:
    """A `Config` class with one field per field of `settings_type`, plus `extra_fields` (type, default)."""
    hints = get_type_hints(settings_type)
    knobs = {field.name: (hints[field.name], field.default) for field in fields(settings_type)}
    return create_model(name, __base__=Config, __doc__=description, **knobs, **extra_fields)


def settings_from_config(config: Config, settings_type: type[Settings]) -> Settings:
    """The settings dataclass a run's config stands for."""
    return settings_type(**{field.name: getattr(config, field.name) for field in fields(settings_type)})
