"""The RTK apps a router serves: each with its own settings, policy, mode and RTK client.

The single-app form of the configuration is one app named None that owns every source, so
the rest of the router has one code path: an event's app is found by its source (a webhook)
or by its meeting (what reconciliation finds), and its app decides and calls RTK.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from router.config import AppSettings, Settings
from router.core.policy import Policy, PolicyConfig
from router.core.terms import Mode
from router.metrics import Metrics
from router.realtimekit import RtkClient

log = logging.getLogger("router.apps")


@dataclass(frozen=True)
class App:
    """One app in force: its settings, its policy and, with an API token, its RTK client."""

    name: str | None
    settings: AppSettings
    policy: Policy
    rtk: RtkClient | None = None

    @classmethod
    def of(cls, settings: AppSettings) -> App:
        return cls(settings.name, settings, Policy.from_config(settings.policy))

    @property
    def mode(self) -> Mode:
        """The mode in force: shadow whatever the config says when there is no API token."""
        if not self.settings.realtimekit.api_token.get_secret_value():
            return "shadow"
        return self.settings.policy.mode

    @property
    def label(self) -> str:
        """The app as a log field or metric label value ("" in the single-app form)."""
        return self.name or ""

    def with_policy(self, config: PolicyConfig) -> App:
        """This app deciding by `config` from now on."""
        settings = replace(self.settings, policy=config)
        return replace(self, settings=settings, policy=Policy.from_config(config))

    def with_client(self, metrics: Metrics) -> App:
        """This app with its own RTK client (none without an API token, with a warning)."""
        rtk = self.settings.realtimekit
        token = rtk.api_token.get_secret_value()
        if not token:
            where = "realtimekit" if self.name is None else f"app {self.name}: realtimekit"
            log.warning(
                "no %s.api_token: the policy runs in shadow mode "
                "(decisions are published, no recording is started or stopped)",
                where,
            )
            return self
        client = RtkClient(
            base_url=rtk.api_base_url,
            account_id=rtk.account_id,
            app_id=rtk.app_id,
            api_token=token,
            metrics=metrics.for_app(self.name),
            retry_seconds=rtk.retry_seconds,
            request_timeout=rtk.request_timeout_seconds,
            max_answer_bytes=rtk.max_answer_bytes,
            rate_limit=(rtk.rate_limit_calls, rtk.rate_limit_period_seconds),
        )
        return replace(self, rtk=client)


class Apps(Mapping[str | None, App]):
    """The apps by name, and which app each source belongs to."""

    def __init__(self, apps: tuple[App, ...]) -> None:
        self._apps = {app.name: app for app in apps}
        self._by_source = {source: app.name for app in apps for source in app.settings.sources}

    @classmethod
    def from_settings(cls, settings: Settings) -> Apps:
        return cls(tuple(App.of(app) for app in settings.app_settings()))

    @property
    def single(self) -> bool:
        """Whether this is the single-app form (one app named None)."""
        return None in self._apps

    def of_source(self, source: str) -> App | None:
        """The app a source's webhooks belong to."""
        name = self._by_source.get(source, ...)
        return None if name is ... else self._apps[name]

    def replaced(self, app: App) -> Apps:
        return Apps(tuple(app if a.name == app.name else a for a in self._apps.values()))

    def __getitem__(self, name: str | None) -> App:
        return self._apps[name]

    def __iter__(self) -> Iterator[str | None]:
        return iter(self._apps)

    def __len__(self) -> int:
        return len(self._apps)
