"""A loaded, valid stock repository and what other parts of reconciler ask of it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from reconciler.config._stock import CatalogItem, suggest
from reconciler.config._yaml import LineDict
from reconciler.config.schema import CONFIG_FILE, RepoConfig, TargetConfig
from reconciler.errors import ConfigError, CredentialsError, Problem
from reconciler.model import Capabilities, DesiredPosition, DesiredState, Guards, Policy, PositionKey, TargetPolicy

DEFAULT_STATE = ".reconciler/state.db"
STATE_ENV = "RECONCILER_STATE"
SANDBOX_ENV_FILE = ".reconciler/sandbox.env"


@dataclass
class Project:
    """A valid stock repository: configuration, catalog and desired state (D)."""

    root: Path
    config: RepoConfig
    catalog: dict[str, CatalogItem]
    desired: DesiredState
    stock_files: list[str] = field(default_factory=list)
    config_data: LineDict | None = field(default=None, repr=False)

    @property
    def positions(self) -> dict[PositionKey, DesiredPosition]:
        return self.desired.positions

    @property
    def declared_locations(self) -> dict[tuple[str, str], str]:
        return self.desired.declared_locations

    @property
    def file_digests(self) -> dict[str, str]:
        return self.desired.file_digests

    @property
    def digest(self) -> str:
        return self.desired.digest

    @property
    def state_location(self) -> tuple[str, str]:
        """(state URL or path as written, where it came from): $RECONCILER_STATE, else ``state:``
        in reconciler.yaml, else .reconciler/state.db. ``${VAR}`` references are left for
        :func:`reconciler.state.open_state_store` to resolve; never print this unredacted."""
        if os.environ.get(STATE_ENV):
            return os.environ[STATE_ENV], f"${STATE_ENV}"
        if self.config.state:
            return self.config.state, f"{CONFIG_FILE} state:"
        return DEFAULT_STATE, "the default state location"

    @property
    def state_path(self) -> Path | None:
        """The SQLite file of the state (relative paths: relative to the repository root), or
        None when the state is not a file (postgresql://)."""
        from reconciler.state.url import parse_state_url

        url = parse_state_url(self.state_location[0], root=self.root, env={})
        return url.path if url.kind == "sqlite" else None

    @property
    def protected_items(self) -> frozenset[str]:
        return frozenset(sku for sku, item in self.catalog.items() if item.protect)

    def target(self, name: str) -> TargetConfig:
        try:
            return self.config.targets[name]
        except KeyError:
            raise ConfigError([Problem(f"unknown target {name!r}", CONFIG_FILE, None,
                                       suggest(name, self.config.targets)
                                       + "Targets are defined under targets: in reconciler.yaml.")]) from None

    def policy(
        self,
        capabilities: Mapping[str, Capabilities],
        *,
        only_targets: frozenset[str] | set[str] | list[str] | None = None,
        only_locations: frozenset[str] | set[str] | list[str] | None = None,
        **guard_overrides: Any,
    ) -> Policy:
        """The planning policy. Boolean guard overrides (CLI flags) can only grant an allowance
        on top of reconciler.yaml; ``None`` leaves a guard as configured."""
        self._check_scope(only_targets, self.config.targets, "target")
        self._check_scope(only_locations, self.config.locations, "location")
        defaults = self.config.defaults
        targets = {
            name: TargetPolicy(
                prune=defaults.prune if t.prune is None else t.prune,
                infer_movements=defaults.infer_movements if t.infer_movements is None else t.infer_movements,
            )
            for name, t in self.config.targets.items()
        }
        guards = self.config.guards.model_dump()
        for key, value in guard_overrides.items():
            if key not in guards:
                raise TypeError(f"unknown guard override {key!r}")
            if value is not None:
                guards[key] = (guards[key] or value) if isinstance(value, bool) else value
        return Policy(
            targets=targets,
            capabilities=dict(capabilities),
            guards=Guards(**guards),
            protected_items=self.protected_items,
            only_targets=frozenset(only_targets) if only_targets is not None else None,
            only_locations=frozenset(only_locations) if only_locations is not None else None,
        )

    @staticmethod
    def _check_scope(names: Any, known: Mapping[str, Any], what: str) -> None:
        unknown = sorted(set(names or ()) - set(known))
        if unknown:
            raise ConfigError([Problem(f"unknown {what} {name!r}", None, None,
                                       suggest(name, known) + f"Known {what}s: {', '.join(known)}.") for name in unknown])

    def target_context(self, name: str, env: Mapping[str, str] | None = None) -> Any:
        """The connector context of one target, with its credential from the environment."""
        from reconciler.connectors.base import Secret, TargetContext

        target = self.target(name)
        credential = Secret(self._credential(name, target, os.environ if env is None else env))
        token_source = self._token_source(name, credential, env)
        item_ids = {sku: item.ids[name] for sku, item in self.catalog.items() if name in item.ids}
        return TargetContext(
            name=name,
            kind=target.kind,
            base_url=(target.url or "").rstrip("/"),
            credential=credential,
            location_ids={loc: vid for loc, vid in target.locations.items() if vid},
            item_ids=item_ids,
            options=dict(target.options),
            rate_limit=target.rate_limit,
            rate_burst=target.rate_burst,
            concurrency=target.concurrency,
            timeout_s=target.timeout,
            token_source=token_source,
        )

    def _token_source(self, name: str, credential: Any, env: Mapping[str, str] | None) -> Any:
        from reconciler.auth.build import token_source

        raw = self.config_data.get("targets", {}).get(name) if self.config_data else None
        line = raw.line_of("auth") if isinstance(raw, LineDict) and "auth" in raw else None
        return token_source(self, name, credential, env, line)

    def _credential(self, name: str, target: TargetConfig, env: Mapping[str, str]) -> str:
        var = target.credentials_env
        if var is None:
            return ""  # kinds without an endpoint (memory)
        value = env.get(var) or read_env_file(self.root / SANDBOX_ENV_FILE).get(var)
        if value:
            return value
        raw = self.config_data.get("targets", {}).get(name) if self.config_data else None
        line = raw.line_of("credentials_env") if isinstance(raw, LineDict) else None
        raise CredentialsError([Problem(
            f"target {name!r} needs its credential in the environment variable {var}, which is not set",
            CONFIG_FILE, line,
            f"Set it before running reconciler (export {var}=<token>), or for the sandboxes add "
            f"{var}=<token> to {SANDBOX_ENV_FILE} (`reconciler sandbox` writes it).")])


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (dotenv style: blank lines, # comments, `export ` and quotes allowed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values
