"""Fixtures for the teacher tests (owned by that area)."""
