"""Settings that fail to load, reported as one line naming the environment variable.

pydantic-settings raises a multi-line ValidationError (field names, not the variables people set)
or a SettingsError whose reason hides in its cause (a JSON list that does not parse). Every entry
point (the CLIs, `bentoml serve`) builds its settings through `load_settings`, which turns both
into one `SettingsProblem` line such as `SERVING_TOP_K: Input should be greater than 0`. Values
are never echoed: some are secrets. It lives in `models` because every entry point imports it.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings, SettingsError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsProblem(ValueError):
    """A setting that cannot be used; the message is one line naming the variable(s)."""


def _field_of(settings_cls: type[BaseSettings], key: str) -> str | None:
    # pydantic reports a field by name, or by the first of its alias choices.
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        if key == name or key in choices:
            return name
    return None


def env_name(settings_cls: type[BaseSettings], key: str) -> str:
    """The environment variable behind `key` (a field name, or an alias pydantic reported)."""
    name = _field_of(settings_cls, key)
    if name is None:
        return key.upper()
    alias = settings_cls.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        # pydantic names the first choice even when another was set: name the one that is set.
        names = [choice.upper() for choice in alias.choices if isinstance(choice, str)]
        set_here = {variable.upper() for variable in os.environ}
        return next((choice for choice in names if choice in set_here), names[0] if names else key)
    if isinstance(alias, str):
        return alias.upper()
    return f"{settings_cls.model_config.get('env_prefix', '')}{name}".upper()


def describe(settings_cls: type[BaseSettings], problem: ValidationError | SettingsError) -> str:
    """One line: each offending variable and what is wrong with it."""
    if isinstance(problem, SettingsError):
        # "error parsing value for field "x" from source ...": the reason is the cause.
        field = str(problem).split('"')[1] if str(problem).count('"') >= 2 else ""
        reason = problem.__cause__ or problem
        name = env_name(settings_cls, field) if field else settings_cls.__name__
        return f"{name}: cannot parse the value ({reason})"
    parts = []
    for error in problem.errors(include_url=False, include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        name = env_name(settings_cls, str(error["loc"][0])) if error["loc"] else ""
        # A check across fields, or one whose message starts with its variable, names it already.
        parts.append(message if not name or message.startswith(name) else f"{name}: {message}")
    return "; ".join(part.replace("\n", " ") for part in parts)


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """`settings_cls()` read from the environment; SettingsProblem (one line) when it is bad."""
    try:
        return settings_cls()
    except (ValidationError, SettingsError) as problem:
        raise SettingsProblem(f"bad setting {describe(settings_cls, problem)}") from None
