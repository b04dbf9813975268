"""Math verification: accuracy on labelled pairs, math-verify's false positives, gold forms, real traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.math import (
    MathOptions,
    answers_equal,
    extract_answer,
    gold_from_solution,
    normalize_answer,
    verify_math,
)

# math-verify's own tests call `compare_strings` with these extraction targets (tests/test_all.py).
KINDS = {"test_number_extraction": ("expr",), "test_latex_notation": ("latex",)}

# Every disagreement with the labelled pairs that we accept, and why.
ACCEPTED_DISAGREEMENTS = {
    # `1 - 1/e` vs `1 + 1/e`: the upstream test asserts math-verify's (wrong) "equal", as the row's
    # label_note says. Our guard rejects it, which is the mathematically right answer.
    ("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$"),
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_agrees_with_every_labelled_math_verify_pair_but_the_mislabelled_one(shared_data: Path) -> None:
    rows = _rows(shared_data / "verify" / "math_verify_test_pairs.jsonl")
    disagreements = set()
    for row in rows:
        extra = row["extra"]
        options = MathOptions(
            float_rounding=extra.get("precision", 6),
            strict=extra.get("strict", True),
            allow_set_relation_comp=extra.get("allow_set_relation_comp", False),
        )
        got = answers_equal(
            row["gold"], row["pred"], options, kinds=KINDS.get(row["test"], ("latex", "expr"))
        )
        if int(got) != row["expected"]:
            disagreements.add((row["gold"], row["pred"]))
    assert len(rows) == 268
    assert disagreements == ACCEPTED_DISAGREEMENTS
    assert all("label_note" in r for r in rows if (r["gold"], r["pred"]) in ACCEPTED_DISAGREEMENTS)


def test_agrees_with_every_nemo_skills_pair_both_ways(shared_data: Path) -> None:
    rows = _rows(shared_data / "verify" / "nemo_skills_math_equal_pairs.jsonl")
    wrong = []
    for row in rows:
        a, b = (None if v is None else str(v) for v in (row["a"], row["b"]))
        if answers_equal(a, b) != row["equivalent"] or answers_equal(b, a) != row["equivalent"]:
            wrong.append((row["a"], row["b"]))
    assert len(rows) == 30 and wrong == []


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"),  # both round to 0 at 6 decimals
        ("\\frac{1}{2004!}", "\\frac{1}{2006!}"),
        ("1-\\frac{1}{\\mathrm{e}}", "1+\\frac{1}{\\mathrm{e}}"),  # math-verify reads both as `1`
        ("3x-y+13=0", "3x+4y+14=0"),  # math-verify reads both as `0`
    ],
)
def test_rejects_math_verifys_known_false_positives(gold: str, pred: str) -> None:
    assert not answers_equal(gold, pred)
    assert verify_math(f"The answer is $\\boxed{{{pred}}}$.", gold).ok is False
    assert verify_math(f"The answer is $\\boxed{{{gold}}}$.", gold).ok is True


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("3x-y+13=0", "6x-2y+26=0"),  # the same line
        ("y=2x+1", "2x+1"),
        ("2^{-99}", "\\frac{1}{2^{99}}"),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
        ("\\frac{1}{12}", "0.0833333333"),
        ("28\\%", "28"),
        ("(x+1)^2", "x^2+2x+1"),
    ],
)
def test_keeps_math_verifys_agreement_elsewhere(gold: str, pred: str) -> None:
    assert answers_equal(gold, pred)


def test_gold_forms_gsm8k_solution_dollar_and_float() -> None:
    assert verify_math("so she makes \\boxed{18} dollars", "Janet sells 16 - 3 - 4 = 9 eggs ... #### 18").ok
    assert gold_from_solution("Janet ... 9 * 2 = $<<9*2=18>>18\n#### 1,018") == "1018"
    assert gold_from_solution("so the answer is $\\boxed{\\frac{\\pi}{2}}$.") == "\\frac{\\pi}{2}"
    assert verify_math("\\boxed{27}", 27.0).ok  # AMC's float gold
    assert verify_math("\\boxed{6}", "\\$6").ok  # an escaped currency sign in gold
    assert verify_math("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "(3,\\frac{\\pi}{2})").ok


def test_null_means_not_applicable_and_false_means_wrong() -> None:
    assert verify_math("\\boxed{3}", None) == verify_math("\\boxed{3}", float("nan"))
    assert verify_math("\\boxed{3}", None).ok is None
    assert verify_math("\\boxed{3}", "  ").ok is None
    assert verify_math("\\boxed{3}", "\\frac{").ok is None  # gold that does not parse
    assert verify_math("", "3").ok is False  # no answer at all is wrong, not unknown
    assert verify_math("I give up.", "3").ok is False
    assert verify_math("\\boxed{4}", "3").ok is False


def test_multiple_choice_and_plain_text_answers() -> None:
    assert verify_math("The answer is \\boxed{\\text{(C)}}", "C").ok
    assert verify_math("Therefore the answer is (B).", "(B)").ok
    assert verify_math("\\boxed{D}", "C").ok is False
    assert verify_math("so \\boxed{\\text{Evelyn}}", "Evelyn").ok
    assert verify_math("so \\boxed{\\text{Briana}}", "Evelyn").ok is False
    assert answers_equal("A", "\\textbf{A}")


def test_extract_and_normalize_answer_for_majority_voting() -> None:
    text = "First \\boxed{2}. Then, correcting: \\boxed{\\dfrac{1}{2}}."
    assert extract_answer(text) == "\\dfrac{1}{2}"
    assert extract_answer("no answer here") is None
    assert extract_answer("The final answer is 42.") == "42"
    votes = {
        normalize_answer(a) for a in ("\\frac{1}{2}", "\\dfrac{1}{2}", "0.5", "$\\boxed{1/2}$", " 0.50 ")
    }
    assert votes == {"1/2"}
    assert normalize_answer("1,000") == normalize_answer("1000")
    assert normalize_answer("\\text{(B)}") == "B"
    assert normalize_answer("x+1") != normalize_answer("x+2")


def test_answer_after_think_not_inside_it(shared_data: Path) -> None:
    """Only the part after the reasoning is graded: a boxed value inside the thoughts does not count."""
    from distill.reasoning import normalise

    row = json.loads((shared_data / "traces" / "skyt1_27b_math500_outputs.jsonl").read_text().splitlines()[0])
    trace = normalise(row["code"][0])
    assert trace.complete
    assert verify_math(trace.answer_text, row["answer"]).ok is True
    unfinished = normalise("<|begin_of_thought|>\nSo the answer is \\boxed{" + row["answer"] + "}")
    assert verify_math(unfinished.answer_text, row["answer"]).ok is False


@pytest.mark.parametrize(
    ("answer", "gold", "ok", "reason"),
    [
        ("\\boxed{4\\sqrt(2)}", "4", False, "parsed"),  # `\sqrt(2)` read as √2, not as the 4 before it
        ("\\boxed{1, 3, 5, \\ldots, 2n-1}", "1, 2, \\ldots, n", None, "gold_unparsed"),
        ("\\boxed{E_1 \\text{ with probability } \\frac13}", "3", None, "partial_parse"),
        ("", "3", False, "no_answer"),
        ("Let me try again. Alternatively, perhaps", "3", False, "no_answer"),  # cut off mid-sentence
        ("So it is \\boxed{3}.", None, None, "gold_unparsed"),
        ("The roots are \\boxed{2} and \\boxed{3}.", "2, 3", True, "parsed"),
        ("\\boxed{255}. Final Answer: The final answer is $10,455$.", "10455", True, "parsed"),
    ],
)
def test_verdict_reasons(answer: str, gold: str | None, ok: bool | None, reason: str) -> None:
    verdict = verify_math(answer, gold)
    assert (verdict.ok, verdict.reason) == (ok, reason)
    assert verdict.ok is not True or verdict.reason == "parsed"  # "equal" only from a whole parse


def test_python_spelled_answers_are_rewritten_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = f"__import__('os').system('touch {marker}')"
    assert verify_math(f"\\boxed{{{hostile}}}", "0").ok is not True
    assert verify_math("\\boxed{2^{100}}", hostile).ok is not True
    assert not marker.exists()  # Python spellings become LaTeX; nothing is evaluated
    assert verify_math("\\boxed{2^{100}}", "2**100").ok is True
