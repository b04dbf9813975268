"""Fixtures for the models tests (owned by that area)."""
