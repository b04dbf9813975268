"""Verifiers and filters: each usable alone, on a run, and inside the pipeline."""
