"""Evaluation: a student scored on benchmarks the way DeepSeek measured R1 (`stage.evaluate`)."""
