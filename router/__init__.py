"""rtk-router: RealtimeKit webhooks onto Kafka, recordings by policy, clean topics downstream."""

__version__ = "0.1.0"
