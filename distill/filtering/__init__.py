"""Filtering: the rules of `filters/` applied to a run, setting keep / reject_reason (`stage.apply_filters`)."""
