"""What every domain's settings share: strict, frozen models and secret types.

Each domain owns the settings of its own adapters (ingest/settings.py, detectors/config.py,
notifier/settings.py, storage/settings.py) and its adapters take them as they are; the
composition root (citywatch/settings.py) only puts them together into one tree. This module
sits in ingest, the root domain every other may import.

Every model forbids unknown keys, so a typo is an error with its file, line and column
rather than a silently ignored default. Secrets are SecretStr, so they never print.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SecretStr,
)
from pydantic_core import CoreSchema, core_schema

PLACEHOLDERS = ("change-me", "changeme", "change_me", "your-", "placeholder", "example", "xxxx", "todo")
MIN_KEY_CHARS = 32


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Registered:
    """`Annotated[str, Registered(...)]`: a string that must name an entry of a registry (a
    source kind, a push format), refused otherwise with the names there are, and listed as
    an enum in the JSON Schema. `names` is asked at each validation, so an entry registered
    later is accepted."""

    what: str
    plural: str
    names: Callable[[], Iterable[str]]

    def check(self, name: str) -> str:
        present = list(self.names())
        if name not in present:
            raise ValueError(f"unknown {self.what} {name!r} ({self.plural}: {', '.join(present)})")
        return name

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        return {"enum": list(self.names()), "type": "string"}


def _not_placeholder(value: SecretStr | None) -> SecretStr | None:
    """A secret copied from an example file unchanged is refused: better no start than a
    console anybody who read the example can sign cookies for."""
    if value is not None:
        text = value.get_secret_value().strip().lower()
        if not text or any(mark in text for mark in PLACEHOLDERS) or text in ("secret", "password", "token"):
            raise ValueError("is a placeholder: set a real value (environment or secrets file)")
    return value


def _strong_key(value: SecretStr | None) -> SecretStr | None:
    """A key we sign with (cookies, acknowledgement links, webhooks): long and not a placeholder."""
    value = _not_placeholder(value)
    if value is not None and len(value.get_secret_value()) < MIN_KEY_CHARS:
        raise ValueError(f"is too short: at least {MIN_KEY_CHARS} random characters "
                         "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return value


Secret = Annotated[SecretStr | None, AfterValidator(_not_placeholder)]
SigningKey = Annotated[SecretStr | None, AfterValidator(_strong_key)]


def reveal(secret: SecretStr | None) -> str | None:
    """The secret's text, for the one call that needs it."""
    return secret.get_secret_value() if secret is not None else None


def secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every key path under `model` whose value is a secret (a SecretStr field, however
    optional), found from the models themselves: a plugin's new secret is refused in the
    settings file and read from the environment without anyone keeping a list."""
    found: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        for kind in _leaf_types(field.annotation):
            if kind is SecretStr:
                found.add((*prefix, name))
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= secret_paths(kind, (*prefix, name))
    return found


def _leaf_types(annotation: Any) -> list[Any]:
    """The types an annotation may hold directly: unions and Annotated unwrapped, but not
    the items of lists or dicts (no secret lives in a list)."""
    if get_origin(annotation) is Annotated:
        return _leaf_types(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [leaf for arg in get_args(annotation) for leaf in _leaf_types(arg)]
    return [annotation]
