"""Fixtures for the records tests."""
