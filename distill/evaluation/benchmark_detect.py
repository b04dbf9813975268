"""A user's own benchmark file: its kind and columns, detected from the file or given in the recipe.

The registry (distill/evaluation/benchmarks.py and its family modules) is a convenience for well-known sets, not a gate: any
`--benchmark NAME=PATH` works for `distill eval` and `distill filter`. For a name the registry does
not know, the file decides, in this order:

    kind     code when it has test columns (test / test_list / …), choice when it has a list of
             options (choices / options), else math
    problem  problem, question, prompt, text, … (the first present)
    answer   answer, gt, final_answer, solution, … ; GSM8K-style `… #### 42` keeps the number after
             ####, a worked solution keeps its last \\boxed{…}
    id       id, unique_id, task_id, … else the row number

`eval.benchmarks_meta.NAME` (or `filter.benchmarks_meta.NAME`) overrides any of them, e.g.
`--set eval.benchmarks_meta.heldout.kind=math --set eval.benchmarks_meta.heldout.answer_column=target`.
A one-line note says what was used; a file with no usable problem (or, for math and multiple
choice, answer) column is one line naming the file and the columns it has.
"""

from __future__ import annotations

import logging
import re
from statistics import median
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from distill.config import StageConfig
from distill.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from distill.evaluation.spec import BenchmarkSpec

log = logging.getLogger(__name__)

__all__ = ["BenchmarkMeta", "detect_spec", "is_safe_name"]

Kind = Literal["math", "code", "choice"]
TEXT_COLUMNS = (
    "problem",
    "question",
    "prompt",
    "text",
    "Question",
    "question_content",
    "input",
    "instruction",
)
ANSWER_COLUMNS = ("answer", "gt", "final_answer", "target", "label", "Correct Answer", "solution", "output")
CODE_ANSWER_COLUMNS = ("canonical_solution", "solution", "code", "answer")
ID_COLUMNS = ("id", "unique_id", "task_id", "question_id", "problem_id", "index", "idx")
# Columns the code verifier and the eval prompts read (HumanEval-style and MBPP-style tests).
CODE_TEST_COLUMNS = ("test", "entry_point", "test_list", "test_setup_code", "challenge_test_list")
CHOICE_COLUMNS = ("choices", "options")
DEFAULT_K = 4  # samples per problem for a benchmark the registry does not know (pass@1 over 4)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class BenchmarkMeta(StageConfig):
    """What a benchmark file holds, for a name the registry does not know (or to override it)."""

    kind: Kind | None = Field(
        default=None, description="math, code or choice; default: detected from the columns."
    )
    text_column: str | None = Field(
        default=None, description="The problem's column; default: problem, question, prompt, …"
    )
    answer_column: str | None = Field(
        default=None, description="The gold answer's column; default: answer, gt, solution, …"
    )
    id_column: str | None = Field(
        default=None, description="The item id's column; default: id, unique_id, … or the row."
    )
    k: int | None = Field(
        default=None, ge=1, description=f"Samples per problem when eval.k is auto (default {DEFAULT_K})."
    )


def is_safe_name(name: str) -> bool:
    """A benchmark name that can name a folder (letters, digits, _ . -)."""
    return _NAME.fullmatch(name) is not None


def detect_spec(
    name: str, raw: pl.DataFrame, source: Path, meta: BenchmarkMeta | None = None
) -> BenchmarkSpec:
    """The spec of an unregistered benchmark, from `meta` where given and the file's columns otherwise."""
    from distill.evaluation.spec import BenchmarkSpec

    meta = meta or BenchmarkMeta()
    columns = raw.columns
    kind = meta.kind or _detect_kind(columns)
    text = _column(columns, meta.text_column, TEXT_COLUMNS, "text_column", source)
    answer = _column(
        columns,
        meta.answer_column,
        CODE_ANSWER_COLUMNS if kind == "code" else ANSWER_COLUMNS,
        "answer_column",
        source,
    )
    if text is None or (answer is None and kind != "code"):
        what, key = ("problem", "text_column") if text is None else ("answer", "answer_column")
        wanted = ", ".join((TEXT_COLUMNS if text is None else ANSWER_COLUMNS)[:4])
        raise InputError(
            f"benchmark {name!r}: no {what} column ({wanted}, …); its columns are {', '.join(columns)}; "
            f"name one with --set eval.benchmarks_meta.{name}.{key}=COLUMN (filter.… for distill filter)",
            path=source,
        )
    id_col = _column(columns, meta.id_column, ID_COLUMNS, "id_column", source)
    answer_format = _answer_format(raw, answer) if answer and kind == "math" else "plain"
    # HumanEval-style files keep `prompt` (the function stub) beside the problem, as the registry's humaneval does.
    passthrough = tuple(c for c in (*CODE_TEST_COLUMNS, "prompt") if c in columns) if kind == "code" else ()
    if kind == "choice":
        passthrough = tuple(c for c in CHOICE_COLUMNS if c in columns)[:1]
    k = meta.k or DEFAULT_K
    spec = BenchmarkSpec(
        name=name,
        version="local",
        hub_id=None,
        config=None,
        split="file",
        text_column=text,
        answer_column=answer,
        kind=kind,
        default_k=k,
        id_column=id_col,
        passthrough=passthrough,
        answer_format=answer_format,
        description=f"{source.name} (not in the registry)",
    )
    shown = {"hashes": " (the number after ####)", "boxed": " (its last \\boxed{})"}.get(answer_format, "")
    log.warning(
        "benchmark %s is not in the registry: %s read as %s, problem %r, answer %s%s, id %s, k=%d "
        "(--set eval.benchmarks_meta.%s.kind=… to change; also text_column, answer_column, id_column, k)",
        name,
        source,
        kind,
        text,
        repr(answer) if answer else "none (graded by its tests)",
        shown,
        repr(id_col) if id_col else "row number",
        k,
        name,
    )
    return spec


def _detect_kind(columns: list[str]) -> Kind:
    if any(c in columns for c in CODE_TEST_COLUMNS):
        return "code"
    if any(c in columns for c in CHOICE_COLUMNS):
        return "choice"
    return "math"


def _column(
    columns: list[str], explicit: str | None, candidates: tuple[str, ...], key: str, source: Path
) -> str | None:
    if explicit is not None:
        if explicit not in columns:
            raise InputError(
                f"{key} {explicit!r} is not a column; its columns are {', '.join(columns)}", path=source
            )
        return explicit
    return next((c for c in candidates if c in columns), None)


def _answer_format(raw: pl.DataFrame, column: str) -> Literal["plain", "hashes", "boxed"]:
    """hashes when most answers end in `#### N` (GSM8K), boxed when most are worked solutions with \\boxed{}."""
    import polars as pl

    values = raw[column].cast(pl.String, strict=False).drop_nulls()
    if values.is_empty():
        return "plain"

    def share(pattern: str) -> float:
        return sum(bool(x) for x in values.str.contains(pattern).to_list()) / len(values)

    if share(r"####\s*\S") > 0.5:
        return "hashes"
    if share(r"\\boxed\s*\{") > 0.5 and median(values.str.len_chars().to_list()) > 40:
        return "boxed"
    return "plain"
