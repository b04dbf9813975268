"""The math verifier over a frame's rows: filters.math.verify_math in worker processes, each distinct
(gold, answer key) verified once, with a hard wall-clock limit per row (filters/_pool.py).

Samples of one prompt often end in the same boxed answer, so rows are grouped by what a verdict depends
on (`filters.math.answer_key`) and each group is verified once. A row killed at the limit has no
verdict and the reason `timeout`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distill.progress import Progress
    from distill.verification.config import VerifyConfig

__all__ = ["run_math"]


def _math_task(task: tuple[str | None, Any, str | None, Any]) -> tuple[bool | None, str, str]:
    """One row's math verdict, detail and reason (runs in a worker process)."""
    from filters.math import extract_boxed, verify_math

    answer, gold, reasoning, options = task
    verdict = verify_math(answer, gold, options)
    if verdict.ok is False and reasoning and not extract_boxed(answer or ""):
        boxed = extract_boxed(reasoning)
        if boxed is not None:
            fallback = verify_math(f"\\boxed{{{boxed}}}", gold, options)
            return fallback.ok, fallback.detail + " (from the reasoning's last boxed)", fallback.reason
    return verdict.ok, verdict.detail, verdict.reason


def run_math(
    cfg: VerifyConfig,
    answers: list[Any],
    reasoning: list[Any],
    golds: list[Any],
    tests: list[Any],
    out: list[bool | None],
    reasons: list[str | None],
    details: list[list[str]],
    progress: Progress,
) -> None:
    from filters._pool import ItemResult, run_pool
    from filters.math import MathOptions

    options = MathOptions(float_rounding=cfg.float_rounding, strict=cfg.strict, timeout_s=cfg.math_timeout_s)
    todo = [i for i in range(len(answers)) if tests[i] is None]
    for i in range(len(answers)):
        if tests[i] is not None:
            details[i].append("math: not applicable (code row)")

    # Samples of one prompt often end in the same boxed answer: verify each distinct (gold, answer) once.
    groups: dict[tuple[str, str, str | None], list[int]] = {}
    for i in todo:
        groups.setdefault(_math_key(answers[i], golds[i], reasoning[i]), []).append(i)
    members = list(groups.values())

    def done(result: ItemResult) -> None:
        progress.advance(len(members[result.index]))

    tasks = [(answers[rows[0]], golds[rows[0]], reasoning[rows[0]], options) for rows in members]
    results = run_pool(
        _math_task,
        tasks,
        workers=cfg.workers,
        timeout_s=cfg.item_timeout_s,
        memory_mb=cfg.math_memory_mb,
        preload=("filters.math", "math_verify", __name__),
        on_result=done,
    )
    for rows, result in zip(members, results, strict=True):
        for i in rows:
            if result.status == "ok":
                out[i], detail, reasons[i] = result.value
                if detail:
                    details[i].append(f"math: {detail}")
            else:  # killed at the wall-clock limit (or out of memory): no verdict
                reasons[i] = "timeout"
                details[i].append(f"math: {result.status} ({result.detail})")


def _math_key(answer: str | None, gold: Any, reasoning: str | None) -> tuple[str, str, str | None]:
    """What a math verdict depends on: the gold, the answer's key (its boxes), the reasoning's fallback."""
    from filters.math import answer_key, extract_boxed

    fallback = extract_boxed(reasoning) if reasoning and extract_boxed(answer or "") is None else None
    return repr(gold), answer_key(answer), fallback
