"""The schema of reconciler.yaml (pydantic) and the translation of its errors to Problems.

Pydantic is used here only: reconciler.yaml is small. Stock files, which can hold a million
positions, are checked by hand in ``_stock.py``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reconciler.auth._config import AuthConfig
from reconciler.config._kinds import KIND_NAMES
from reconciler.config._yaml import line_at
from reconciler.errors import Problem

StrategyName = Literal["merge", "replace"]
KindName = Literal[KIND_NAMES]  # type: ignore[valid-type]

CONFIG_FILE = "reconciler.yaml"


class _Strict(BaseModel):
    # strict: "12" is not a number and 1 is not true; extra=forbid: typos are errors.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DefaultsConfig(_Strict):
    strategy: StrategyName = "merge"
    prune: bool = False
    infer_movements: bool = True


class GuardsConfig(_Strict):
    max_delete_share: float = Field(0.25, ge=0.0, le=1.0)
    allow_negative: bool = False
    allow_missing_location: bool = False
    allow_mass_delete: bool = False
    allow_protected: bool = False


class LocationConfig(_Strict):
    description: str | None = None


class TargetConfig(_Strict):
    kind: KindName
    url: str | None = None
    credentials_env: str | None = None
    # canonical location -> vendor location id; None is kept so the loader can say which is empty
    locations: dict[str, str | None] = Field(default_factory=dict)
    strategy: StrategyName | None = None
    prune: bool | None = None
    infer_movements: bool | None = None
    rate_limit: float | None = Field(None, gt=0)
    # requests that may go at once before rate_limit paces them (a vendor budget per window)
    rate_burst: int = Field(1, ge=1, le=10_000)
    concurrency: int = Field(4, ge=1, le=64)
    timeout: float = Field(30.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)
    # how the credential becomes an Authorization header (docs/auth.md); default: static bearer
    auth: AuthConfig = Field(default_factory=AuthConfig)

    @field_validator("locations", "options", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class RepoConfig(_Strict):
    version: Literal[1]
    state: str | None = None
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    locations: dict[str, LocationConfig]
    targets: dict[str, TargetConfig]

    @field_validator("state")
    @classmethod
    def _state_url(cls, value: str | None) -> str | None:
        # reconciler.yaml lives in git: a literal password there would be a secret in git.
        if value and "://" in value:
            scheme, rest = value.split("://", 1)
            if scheme.lower() not in ("sqlite", "postgresql", "postgres"):
                raise ValueError(f"unknown state URL scheme {scheme!r}: use a path, sqlite:///path or postgresql://user@host/db")
            userinfo = rest.split("/", 1)[0].rpartition("@")[0]
            if ":" in userinfo and not userinfo.split(":", 1)[1].startswith("${"):
                raise ValueError("the state URL holds a password; write ${ENV_VAR} in its place (or use PGPASSWORD)")
        return value

    @field_validator("defaults", "guards", mode="before")
    @classmethod
    def _null_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("locations", mode="before")
    @classmethod
    def _null_locations(cls, value: Any) -> Any:
        # `bergen:` with nothing after it is a location without a description
        if isinstance(value, Mapping):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


def parse_config(data: Any, file: str = CONFIG_FILE) -> tuple[RepoConfig | None, list[Problem]]:
    """Validate reconciler.yaml's plain values; every pydantic error becomes a located Problem."""
    if not isinstance(data, Mapping):
        return None, [Problem("reconciler.yaml must be a mapping of fields (version, locations, targets, ...)",
                              file, line_at(data, ()) or 1, "See docs/configuration.md for the format.")]
    try:
        return RepoConfig.model_validate(data), []
    except ValidationError as exc:
        return None, [_problem(err, data, file) for err in exc.errors(include_url=False)]


def _problem(err: Mapping[str, Any], data: Any, file: str) -> Problem:
    loc = tuple(err["loc"])
    # pydantic appends the union member or literal it tried ("str", "function-before[...]")
    loc = tuple(step for step in loc if not (isinstance(step, str) and ("[" in step or step in {"str", "none"})))
    where = ".".join(str(step) for step in loc) or "reconciler.yaml"
    line = line_at(data, loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        return Problem(f"unknown field {loc[-1]!r} in {'.'.join(map(str, loc[:-1])) or 'the top level'}",
                       file, line, unknown_hint(str(loc[-1]), fields_at(loc[:-1])))
    if kind == "missing":
        return Problem(f"missing required field {where!r}", file, line,
                       f"Add {loc[-1]}: to {'.'.join(map(str, loc[:-1])) or 'the top level'}; see docs/configuration.md.")
    value = err.get("input")
    if loc == ("state",) and isinstance(value, str):
        value = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", value)  # never echo a password
    shown = "nothing" if value is None else repr(value) if not isinstance(value, Mapping) else "a mapping"
    hint = "Fix the value; see docs/configuration.md for every field and its type."
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        hint = f'Quote it ("{value}") so YAML keeps it as text.'
    return Problem(f"{where}: {err['msg'].rstrip('.')} (got {shown})", file, line, hint)


def unknown_hint(name: str, valid: list[str]) -> str:
    """'Did you mean ...?' plus the valid names."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    listed = ", ".join(valid)
    if close:
        return f"Did you mean {close[0]!r}? Valid fields here: {listed}."
    return f"Valid fields here: {listed}." if valid else "Remove it."


def fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at a location path of RepoConfig (for suggestions)."""
    current: Any = RepoConfig
    for step in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(step))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
