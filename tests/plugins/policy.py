"""Fixtures for the policy tests."""
