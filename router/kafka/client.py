"""What every aiokafka client of the router shares: connection options, the errors a broker
that is down or refusing raises, and the topic administration."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from router.config import KafkaConfig

log = logging.getLogger("router.kafka")

# What a broker that is down, restarting or refusing makes client calls raise.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KafkaError, OSError)


def client_options(config: KafkaConfig, bootstrap: str) -> dict[str, Any]:
    """Connection options shared by producer, consumer and admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": config.client_id,
        "security_protocol": config.security_protocol,
    }
    if config.sasl_mechanism:
        options["sasl_mechanism"] = config.sasl_mechanism
        options["sasl_plain_username"] = config.sasl_username
        if config.sasl_password is not None:
            options["sasl_plain_password"] = config.sasl_password.get_secret_value()
    if config.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        cafile = str(config.ssl_cafile) if config.ssl_cafile else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    return options


def reader_bootstrap(config: KafkaConfig) -> str:
    """Where a command that reads the topics of a running router (`tail`, `why`, `backtest`)
    finds the broker: the embedded one of `router serve` listens on 127.0.0.1 at `embedded_port`."""
    return f"127.0.0.1:{config.embedded_port}" if config.embedded else config.bootstrap_servers


class TopicAdmin:
    """Checks that the router's topics exist and creates the missing ones when allowed."""

    def __init__(
        self,
        config: KafkaConfig,
        bootstrap: str,
        topics: Sequence[str],
        *,
        max_message_bytes: int | None = None,
    ) -> None:
        self._config = config
        self._max_message_bytes = max_message_bytes
        self._options = client_options(config, bootstrap)
        self.topics = tuple(topics)
        self._admin: Any = None

    @property
    def max_message_bytes(self) -> int | None:
        """The largest message the router sends (a body with room for its headers)."""
        return self._max_message_bytes

    async def _client(self) -> Any:
        if self._admin is None:
            admin = AIOKafkaAdminClient(request_timeout_ms=5000, **self._options)
            await admin.start()
            self._admin = admin
        return self._admin

    async def close(self) -> None:
        """Close the admin connection."""
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    async def missing(self) -> list[str]:
        """Topics of the router that the broker does not have (raises KafkaError/OSError)."""
        try:
            existing = set(await (await self._client()).list_topics())
        except (KafkaError, OSError):
            await self.close()  # a fresh connection next time, not a wedged one
            raise
        return [t for t in self.topics if t not in existing]

    async def ensure(self) -> list[str]:
        """Create missing topics if allowed; return those still missing."""
        missing = await self.missing()
        if not missing or not self._config.create_topics:
            return missing
        compacted = {self._config.topics.state}
        sized = (
            {"max.message.bytes": str(self._max_message_bytes)} if self._max_message_bytes else {}
        )
        new = [
            NewTopic(
                name,
                self._config.partitions,
                self._config.replication_factor,
                topic_configs={
                    **sized,
                    **({"cleanup.policy": "compact"} if name in compacted else {}),
                }
                or None,
            )
            for name in missing
        ]
        try:
            await (await self._client()).create_topics(new, timeout_ms=10_000)
        except TopicAlreadyExistsError:
            pass  # another instance was quicker
        except KafkaError as exc:
            log.warning("could not create topics %s: %s", ", ".join(missing), exc)
        return await self.missing()

    async def size_problems(self) -> list[str] | None:
        """Whether the topics that carry raw bodies (webhooks, dead-letter) take a message of
        `max_message_bytes`: one sentence per topic whose `max.message.bytes` is lower; None
        when the broker does not report the setting (it is then not known)."""
        needed = self._max_message_bytes
        sized = (self._config.topics.webhooks, self._config.topics.dead_letter)
        if needed is None:
            return []
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in sized]
        try:
            responses = await (await self._client()).describe_configs(resources)
        except KafkaError:
            return None  # (DescribeConfigs refused or not supported)
        limits: dict[str, int] = {}
        for response in responses:
            for error_code, _, _, name, entries in response.resources:
                for entry in entries if error_code == 0 else ():
                    if entry[0] == "max.message.bytes" and str(entry[1]).isdigit():
                        limits[name] = int(entry[1])
        if any(name not in limits for name in sized):
            return None
        return [
            f"topic {name} takes messages of at most {limits[name]} bytes (max.message.bytes), "
            f"but server.max_body_bytes needs {needed} with room for headers: raise the "
            f"topic's max.message.bytes to at least {needed}, or lower server.max_body_bytes"
            for name in sized
            if limits[name] < needed
        ]
