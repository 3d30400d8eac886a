"""Shared fixtures; each area keeps its own in tests/plugins/."""

pytest_plugins = [
    "tests.plugins.emulator",
    "tests.plugins.policy",
    "tests.plugins.records",
    "tests.plugins.kafka",
    "tests.plugins.live",
    "tests.plugins.e2e",
    "tests.plugins.topics",
    "tests.plugins.full_run",
    "tests.plugins.process",
    "tests.plugins.faults",
    "tests.plugins.console",
]
