"""Faults injected on aiokafka's side of the producer, where a test broker cannot produce them:
the broker's answers are rewritten as aiokafka receives them, and aiokafka's own code turns
them into its errors. Nothing of the router is replaced."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber, RequestTimedOutError
from aiokafka.producer.sender import InitPIDHandler, SendProduceReqHandler


@contextmanager
def transient_init_pid_answers(monkeypatch: pytest.MonkeyPatch, count: int) -> Iterator[list[int]]:
    """The next `count` InitProducerId answers say REQUEST_TIMED_OUT (a transient error); the
    list yielded counts the answers seen."""
    original = InitPIDHandler.handle_response
    seen: list[int] = []

    def handle_response(self: Any, resp: Any) -> Any:
        seen.append(resp.error_code)
        if len(seen) <= count:
            resp = SimpleNamespace(**{**vars(resp), "error_code": RequestTimedOutError.errno})
        return original(self, resp)

    monkeypatch.setattr(InitPIDHandler, "handle_response", handle_response)
    yield seen


@contextmanager
def wedged_producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[int]]:
    """From now on, the first producer that gets a produce answer is stuck: every later answer
    it gets says OUT_OF_ORDER_SEQUENCE_NUMBER, as aiokafka issue 1017 describes (producers made
    afterwards are not). The set yielded holds the stuck producer's sender id."""
    original = SendProduceReqHandler.handle_response
    stuck: set[int] = set()

    def handle_response(self: Any, response: Any) -> Any:
        if not stuck:
            stuck.add(id(self._sender))
        if id(self._sender) in stuck:
            code = OutOfOrderSequenceNumber.errno
            topics = [
                (topic, [(p[0], code, *p[2:]) for p in partitions])
                for topic, partitions in response.topics
            ]
            response = SimpleNamespace(API_VERSION=response.API_VERSION, topics=topics)
        return original(self, response)

    monkeypatch.setattr(SendProduceReqHandler, "handle_response", handle_response)
    yield stuck
