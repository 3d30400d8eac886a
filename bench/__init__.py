"""The rtk-router benchmark: `python bench/run.py [--quick]` (see bench/README.md)."""
