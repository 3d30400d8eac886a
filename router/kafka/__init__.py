"""The only package that imports aiokafka: producing (`producer`), the consumer-group member
(`consumer`), group-less reading (`readers`), and what they share (`client`, `messages`).
aiokafka has no type hints, so it is fenced in here behind small typed classes."""

from router.kafka.client import BROKER_ERRORS, TopicAdmin, client_options, reader_bootstrap
from router.kafka.consumer import Consumer
from router.kafka.idempotence import IdempotenceRefused
from router.kafka.messages import Consumed, Headers, Outgoing, Unsent
from router.kafka.murmur import key_partition
from router.kafka.producer import Publisher
from router.kafka.readers import (
    TopicReader,
    partition_counts,
    read_key_partitions,
    read_partitions,
)

__all__ = [
    "BROKER_ERRORS",
    "Consumed",
    "Consumer",
    "Headers",
    "IdempotenceRefused",
    "Outgoing",
    "Publisher",
    "TopicAdmin",
    "TopicReader",
    "Unsent",
    "client_options",
    "key_partition",
    "partition_counts",
    "read_key_partitions",
    "read_partitions",
    "reader_bootstrap",
]
