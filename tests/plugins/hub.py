"""Fixtures for the hub tests (owned by that area)."""
