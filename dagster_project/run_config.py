"""Launchpad config made from a science settings dataclass, so every knob is declared once.

The science modules hold their knobs as frozen dataclasses (no Dagster import there); the
assets expose the same fields, with the same types and defaults, as Dagster `Config` (or, for
settings several steps share, as a `ConfigurableResource`). Dagster config takes lists and
dicts, not tuples: a settings field `tuple[str, ...]` is a list in config, and a tuple of
(name, value) pairs a dict. A field's `metadata["description"]` is its launchpad help.
"""

from dataclasses import fields
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from dagster import Config
from pydantic import Field, create_model

Settings = TypeVar("Settings")


def _is_pairs(hint: Any) -> bool:
    return get_origin(hint) is tuple and get_origin(get_args(hint)[0]) is tuple


def _config_type(hint: Any) -> Any:
    if _is_pairs(hint):
        key, value = get_args(get_args(hint)[0])
        return dict[key, value]
    return list[get_args(hint)[0]] if get_origin(hint) is tuple else hint


def _config_value(hint: Any, value: Any) -> Any:
    if _is_pairs(hint):
        return dict(value)
    return list(value) if get_origin(hint) is tuple else value


def config_from_settings(
    name: str, settings_type: type, description: str, base: type[Config] = Config, **extra_fields: Any
) -> type[Config]:
    """A `base` subclass with one field per field of `settings_type`, plus `extra_fields` (type, default)."""
    hints = get_type_hints(settings_type)
    knobs = {
        field.name: (_config_type(hints[field.name]), Field(
            default=_config_value(hints[field.name], field.default), description=field.metadata.get("description")))
        for field in fields(settings_type)
    }
    return create_model(name, __base__=base, __doc__=description, **knobs, **extra_fields)


def settings_from_config(config: Config, settings_type: type[Settings]) -> Settings:
    """The settings dataclass a run's config stands for."""
    hints = get_type_hints(settings_type)

    def value(name: str) -> Any:
        configured = getattr(config, name)
        if _is_pairs(hints[name]):
            return tuple(sorted(configured.items()))
        return tuple(configured) if get_origin(hints[name]) is tuple else configured

    return settings_type(**{field.name: value(field.name) for field in fields(settings_type)})


def config_values(settings: Any) -> dict[str, Any]:
    """The config fields standing for `settings` (e.g. to give a resource defaults other than the dataclass's)."""
    hints = get_type_hints(type(settings))
    return {field.name: _config_value(hints[field.name], getattr(settings, field.name)) for field in fields(settings)}
