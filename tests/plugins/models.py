"""Fixtures for the models tests (owned by the SFT area): tiny random students, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model + local ChatML tokenizer (EOS <|im_end|>, pad <|endoftext|>)."""
    from distill.training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2")


@pytest.fixture(scope="session")
def tiny_llama_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama model + local Llama-3-style tokenizer (EOS <|eot_id|>, pad distinct)."""
    from distill.training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")
