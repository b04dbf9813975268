"""Language and language mixing on real traces: the Sky-T1 trace that drifts into Chinese is
rejected, English traces full of Greek letters and quoted foreign terms are not."""

from __future__ import annotations

import polars as pl

from filters.language import LanguageIdentifier, language_share
from tests.filters._data import traces


def test_a_real_trace_drifting_into_chinese_falls_below_the_threshold(shared_data):
    rows = traces(shared_data, "skyt1_32b_aime24_outputs.jsonl")
    drifting = rows[4]["responses"][0]
    assert "或者" in drifting  # the real drift: English for 95 KB, then Chinese
    share = language_share(pl.Series([drifting]))[0]
    assert share < 0.8
    langs, _ = LanguageIdentifier().identify(pl.Series([drifting[-3000:]]))
    assert langs[0] == "zh"


def test_english_traces_with_greek_letters_and_quoted_terms_pass(shared_data):
    english = [r["responses"][0] for r in traces(shared_data, "skyt1_27b_math500_outputs.jsonl")]
    shares = language_share(pl.Series(english))
    assert shares.min() >= 0.95  # θ, π, α in 40 of these traces change nothing
    quoting = (
        "By the Pythagorean theorem (勾股定理 in Chinese texts), the legs satisfy a^2 + b^2 = c^2.\n"
        "The Chinese remainder theorem (中国剩余定理) then gives x ≡ 7 (mod 15).\n"
        "Wait, let me double-check that: 7 mod 3 = 1 and 7 mod 5 = 2. Yes.\nSo the answer is 7."
    )
    assert language_share(pl.Series([quoting]))[0] == 1.0
    assert language_share(pl.Series(["$x^2 = 4$", None]), "en").to_list() == [1.0, 1.0]  # nothing to mix


def test_language_of_reasoning_and_answer(shared_data):
    langs, probs = LanguageIdentifier().identify(
        pl.Series(
            [
                "Nous cherchons la valeur de x. En additionnant les deux équations, on obtient la réponse.",
                "We are looking for the value of x. Adding both equations gives the answer.",
                "42",
            ]
        )
    )
    assert langs.to_list() == ["fr", "en", None]
    assert probs[0] > 0.9 and probs[2] is None


def test_target_language_in_another_script():
    chinese = pl.Series(["我们需要求出x的值。\n两个方程相加得到答案。\nSo x = 3."])
    assert language_share(chinese, "zh")[0] > 0.6
    assert language_share(chinese, "en")[0] < 0.4
