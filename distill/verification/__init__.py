"""Verification: every sample scored by the verifiers of `filters/` (`stage.verify`)."""
