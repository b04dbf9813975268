"""Verifiers and filters: each usable alone, on a run (`distill verify` / `distill filter`), and in the pipeline.

    from filters import verify_math, verify_code, check_format
    verify_math("… so the answer is \\boxed{1/2}.", gold="0.5").ok   # True

Names load on first access, so `import filters` does not pull in sympy, polars or the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filters.code import extract_program, verify_code
    from filters.decontam import build_index, find_matches
    from filters.decontam_semantic import SemanticIndex, find_semantic_matches
    from filters.dedup import find_exact_duplicates, find_near_duplicates
    from filters.format import check_format
    from filters.language import LanguageIdentifier, language_share
    from filters.math import answers_equal, extract_answer, normalize_answer, verify_math
    from filters.readability import count_tokens, has_code_block, longest_paragraph, repetition_share
    from filters.sandbox import Sandbox
    from filters.select import select_top_k

_LAZY = {
    "verify_math": "filters.math",
    "answers_equal": "filters.math",
    "extract_answer": "filters.math",
    "normalize_answer": "filters.math",
    "verify_code": "filters.code",
    "extract_program": "filters.code",
    "Sandbox": "filters.sandbox",
    "check_format": "filters.format",
    "find_exact_duplicates": "filters.dedup",
    "find_near_duplicates": "filters.dedup",
    "build_index": "filters.decontam",
    "find_matches": "filters.decontam",
    "SemanticIndex": "filters.decontam_semantic",
    "find_semantic_matches": "filters.decontam_semantic",
    "language_share": "filters.language",
    "LanguageIdentifier": "filters.language",
    "longest_paragraph": "filters.readability",
    "has_code_block": "filters.readability",
    "repetition_share": "filters.readability",
    "count_tokens": "filters.readability",
    "select_top_k": "filters.select",
}

__all__ = [
    "LanguageIdentifier",
    "Sandbox",
    "SemanticIndex",
    "answers_equal",
    "build_index",
    "check_format",
    "count_tokens",
    "extract_answer",
    "extract_program",
    "find_exact_duplicates",
    "find_matches",
    "find_near_duplicates",
    "find_semantic_matches",
    "has_code_block",
    "language_share",
    "longest_paragraph",
    "normalize_answer",
    "repetition_share",
    "select_top_k",
    "verify_code",
    "verify_math",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'filters' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
