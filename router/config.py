"""The one place that reads `config.yaml` and the environment, into validated, frozen settings.

Every problem is reported as `FILE:LINE: dotted.path: message`, all at once, so an operator
fixes a file in one pass. Keys are strict (`extra="forbid"`): a typo is an error, not a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from router.config_problems import describe, dotted, line_order, secret_warnings
from router.core.policy import PolicyConfig
from router.errors import ConfigError
from router.yamlsource import load_yaml, unquoted

RTK_PUBLIC_KEY_URL = "https://api.realtime.cloudflare.com/.well-known/webhooks.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "0.0.0.0"  # noqa: S104 - a service listens on all interfaces unless told otherwise
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, gt=0)
    dedupe_content_seconds: float = Field(60.0, ge=0)
    dedupe_max_entries: int = Field(100_000, gt=0)
    # A log line per accepted delivery too (about 14 µs each). Off by default: an accepted
    # delivery is on the webhooks log with its source, event, delivery id and time, and counted
    # in the metrics; a refused one is always logged.
    access_log: bool = False
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    # With --workers N, worker n also answers /metrics alone on this port + n (None: only the
    # shared port, where a scrape reaches one process of the N).
    worker_metrics_port: int | None = Field(None, ge=1, le=65535)
    # Limits on connections from outside (README "Limits and time-outs").
    keepalive_timeout_seconds: float = Field(15.0, gt=0)
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_timeout_seconds: float = Field(30.0, gt=0)
    max_connections: int = Field(900, gt=0)  # fits the common 1,024 descriptor limit
    max_body_reads: int = Field(64, gt=0)


class RsaSignatureConfig(_Strict):
    scheme: Literal["rtk-rsa"]
    public_key_file: Path | None = None
    public_key_url: str | None = RTK_PUBLIC_KEY_URL
    key_cache_seconds: float = Field(3600.0, gt=0)
    refetch_interval_seconds: float = Field(60.0, ge=0)
    key_fetch_timeout_seconds: float = Field(5.0, gt=0)
    max_key_bytes: int = Field(65_536, gt=0)

    @model_validator(mode="after")
    def _one_key_source(self) -> RsaSignatureConfig:
        if self.public_key_file is None and not self.public_key_url:
            raise ValueError("set public_key_file or public_key_url")
        return self


class HmacSignatureConfig(_Strict):
    scheme: Literal["hmac"]
    secrets: list[SecretStr] = Field(min_length=1)
    max_age_seconds: int = Field(300, gt=0)

    @model_validator(mode="after")
    def _no_empty_secret(self) -> HmacSignatureConfig:
        if any(not secret.get_secret_value() for secret in self.secrets):
            raise ValueError("a secret is empty")
        return self


SignatureConfig = Annotated[RsaSignatureConfig | HmacSignatureConfig, Field(discriminator="scheme")]


class SourceConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str = Field(pattern=r"^/[^?#\s]*$")
    signature: SignatureConfig


class RealtimeKitConfig(_Strict):
    api_base_url: str = "https://api.cloudflare.com/client/v4"
    account_id: str = ""
    app_id: str = ""
    api_token: SecretStr = SecretStr("")
    retry_seconds: float = Field(600.0, gt=0)
    request_timeout_seconds: float = Field(10.0, gt=0)
    max_answer_bytes: int = Field(1_048_576, gt=0)
    rate_limit_calls: int = Field(1000, gt=0)
    rate_limit_period_seconds: float = Field(50.0, gt=0)


class TopicsConfig(_Strict):
    webhooks: str = "rtk.webhooks"
    recordings: str = "rtk.recordings"
    meetings: str = "rtk.meetings"
    decisions: str = "rtk.decisions"
    dead_letter: str = "rtk.dead-letter"
    state: str = "rtk.router-state"


# The embedded broker answers a fetch only once its wait is over, so the wait is the delay
# between a webhook's acknowledgement and the worker seeing it; Kafka answers as soon as a
# message arrives, and its own default keeps an idle consumer from polling 50 times a second.
EMBEDDED_FETCH_WAIT_MS = 20
KAFKA_FETCH_WAIT_MS = 500


class KafkaConfig(_Strict):
    bootstrap_servers: str = "embedded"
    group_id: str = "rtk-router"
    ack_timeout_seconds: float = Field(5.0, gt=0)
    # A member silent this long is expelled from the group; a rebalance also waits about
    # half of it for members to join, so it bounds fail-over and start-up time.
    session_timeout_seconds: float = Field(10.0, ge=1)
    topics: TopicsConfig = TopicsConfig()
    create_topics: bool = True
    partitions: int = Field(6, gt=0)
    replication_factor: int = Field(1, gt=0)
    embedded_port: int = Field(9092, ge=1, le=65535)
    client_id: str = "rtk-router"
    # auto (null too, as before): tried against a real cluster, dropped with a warning when the
    # cluster gives out no producer ids; off for the embedded broker. true/false force it.
    idempotent: bool | Literal["auto"] | None = "auto"
    # How long the broker may hold a fetch that finds nothing new; None: 20 ms for the embedded
    # broker (which answers a fetch only when this wait is over), Kafka's 500 ms otherwise.
    fetch_max_wait_ms: int | None = Field(None, ge=0, le=60_000)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    @property
    def embedded(self) -> bool:
        """Whether the bundled development broker is to be started."""
        return self.bootstrap_servers.strip() == "embedded"

    @property
    def fetch_wait_ms(self) -> int:
        """The fetch wait in force (see `fetch_max_wait_ms`)."""
        if self.fetch_max_wait_ms is not None:
            return self.fetch_max_wait_ms
        return EMBEDDED_FETCH_WAIT_MS if self.embedded else KAFKA_FETCH_WAIT_MS


class WorkerConfig(_Strict):
    # Backpressure: fetching pauses while this many events, or this many meetings, wait on
    # RTK (and resumes below half of both).
    max_in_flight: int = Field(2000, gt=0)
    max_waiting_meetings: int = Field(500, gt=0)
    # An ended meeting's state is kept this long for late events, then tombstoned.
    ended_state_grace_seconds: float = Field(3600.0, ge=0)


class ReconcileConfig(_Strict):
    # Every interval, each meeting believed live is checked against RTK (0: never).
    interval_seconds: float = Field(60.0, ge=0)
    # Reconciliation's share of the RTK API budget, on top of the client's own rate limit.
    max_calls_per_minute: int = Field(120, gt=0)

    @property
    def enabled(self) -> bool:
        return self.interval_seconds > 0


class ConsoleConfig(_Strict):
    """`router console`: who may read the page, and how much of the topics it keeps."""

    username: str = ""
    password: SecretStr = SecretStr("")
    # Records of each partition read at start-up before following live (0: only new ones).
    history_per_partition: int = Field(10_000, ge=0)
    # The meetings kept in memory (the most recently active), the records kept of each, and
    # of all of them together (the bound of the console's memory, a record being ~1 KB).
    max_meetings: int = Field(1000, gt=0)
    max_records_per_meeting: int = Field(1000, gt=0)
    max_records: int = Field(100_000, gt=0)

    @model_validator(mode="after")
    def _both_or_neither(self) -> ConsoleConfig:
        if bool(self.username) != bool(self.password.get_secret_value()):
            raise ValueError("set both username and password, or neither")
        if ":" in self.username:
            raise ValueError("username must not contain ':' (HTTP Basic separates with it)")
        return self

    @property
    def has_credentials(self) -> bool:
        """Whether the page can ask for a login."""
        return bool(self.username)


class AppConfig(_Strict):
    """One RTK app of the `apps` form: its credentials, its sources and its policy."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    realtimekit: RealtimeKitConfig = RealtimeKitConfig()
    sources: list[str] = Field(min_length=1)
    policy: PolicyConfig = PolicyConfig()


@dataclass(frozen=True)
class AppSettings:
    """One app as the router runs it; the single-app form is one app named None that owns
    every source."""

    name: str | None
    realtimekit: RealtimeKitConfig
    policy: PolicyConfig
    sources: tuple[str, ...]


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    sources: list[SourceConfig] = Field(min_length=1)
    realtimekit: RealtimeKitConfig = RealtimeKitConfig()
    kafka: KafkaConfig = KafkaConfig()
    worker: WorkerConfig = WorkerConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    policy: PolicyConfig = PolicyConfig()
    console: ConsoleConfig = ConsoleConfig()
    apps: list[AppConfig] | None = Field(None, min_length=1)

    def app_settings(self) -> tuple[AppSettings, ...]:
        """The apps to run, in configuration order."""
        if self.apps is None:
            names = tuple(source.name for source in self.sources)
            return (AppSettings(None, self.realtimekit, self.policy, names),)
        return tuple(
            AppSettings(app.name, app.realtimekit, app.policy, tuple(app.sources))
            for app in self.apps
        )

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        for attr in ("name", "path"):
            values = [getattr(source, attr) for source in self.sources]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"source {attr}s must be unique: {', '.join(duplicates)}")
        return self


@dataclass(frozen=True)
class LoadedConfig:
    """Validated settings, where they came from, and warnings that do not stop start-up."""

    settings: Settings
    path: str
    warnings: tuple[str, ...]


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and validate the file at `path`; raise `ConfigError` listing every problem."""
    shown = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{shown}:1: (file): cannot read: {exc.strerror}"]) from None
    return parse_config(text, shown, os.environ if env is None else env)


def parse_config(text: str, shown: str, env: Mapping[str, str]) -> LoadedConfig:
    """Validate YAML `text`; `shown` is the file name used in messages."""
    try:
        doc = load_yaml(text, env)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = unquoted(getattr(exc, "problem", None) or "not YAML")
        raise ConfigError([f"{shown}:{line}: (yaml): {problem}"]) from None
    problems = [f"{shown}:{doc.line_of(p)}: {dotted(p)}: {msg}" for p, msg in doc.problems]
    if not isinstance(doc.data, dict):
        raise ConfigError([*problems, f"{shown}:1: (root): the file must hold a mapping"])
    try:
        settings = Settings.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(describe(exc, doc, shown))
        settings = None
    if settings is not None:
        problems.extend(
            f"{shown}:{doc.line_of(p)}: {dotted(p)}: {msg}" for p, msg in app_problems(doc.data)
        )
    if problems or settings is None:
        raise ConfigError(sorted(problems, key=line_order))
    return LoadedConfig(settings=settings, path=shown, warnings=tuple(secret_warnings(doc, shown)))


def app_policies(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> dict[str, PolicyConfig | list[str]]:
    """Each app's policy of the file at `path`, validated on its own (or its problems), so that
    a reload takes the good ones of a file whose other parts are wrong. Empty when the file
    cannot be read or has no list of apps."""
    shown = os.fspath(path)
    try:
        doc = load_yaml(Path(path).read_text(encoding="utf-8"), os.environ if env is None else env)
    except (OSError, yaml.YAMLError):
        return {}
    apps = doc.data.get("apps") if isinstance(doc.data, dict) else None
    found: dict[str, PolicyConfig | list[str]] = {}
    for i, app in enumerate(apps if isinstance(apps, list) else []):
        if not isinstance(app, dict) or not isinstance(app.get("name"), str):
            continue
        at = ("apps", i, "policy")
        mine = [
            f"{shown}:{doc.line_of(p)}: {dotted(p)}: {m}" for p, m in doc.problems if p[:3] == at
        ]
        try:
            policy = PolicyConfig.model_validate(app.get("policy") or {})
        except ValidationError as exc:
            mine.extend(describe(exc, doc, shown, at))
        found[app["name"]] = mine or policy
    return found


def app_problems(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with how the apps and sources of an otherwise valid file fit together."""
    apps = data.get("apps")
    if apps is None:
        return []
    found: list[tuple[tuple[str | int, ...], str]] = [
        ((key,), "not allowed beside apps (each app has its own)")
        for key in ("realtimekit", "policy")
        if key in data
    ]
    sources = [source["name"] for source in data["sources"]]
    names: set[str] = set()
    owner: dict[str, str] = {}
    for i, app in enumerate(apps):
        if app["name"] in names:
            found.append((("apps", i, "name"), f"duplicate app name '{app['name']}'"))
        names.add(app["name"])
        for j, source in enumerate(app["sources"]):
            where = ("apps", i, "sources", j)
            if source not in sources:
                found.append((where, f"unknown source '{source}'"))
            elif source in owner:
                found.append((where, f"source '{source}' already belongs to app '{owner[source]}'"))
            else:
                owner[source] = app["name"]
    found.extend(
        (("sources", k, "name"), f"source '{name}' belongs to no app")
        for k, name in enumerate(sources)
        if name not in owner
    )
    return found
