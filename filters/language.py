"""Language of reasoning and answer, and language MIXING inside a trace (DeepSeek-R1's rule).

Two measures, both cheap enough for 100k long traces:

* `language_share`: the trace is cut into chunks (lines); each chunk is labelled with the script that
  has most of its word units (a Latin word, a Cyrillic word, … or one CJK character), and the share
  is the weight of chunks in the target script over all chunks. Math (LaTeX, Greek letters, digits)
  is neutral. Chunk labels make a quoted foreign term inside an English line harmless, while a
  trace that drifts into Chinese for its last third loses that third.
* `language`: py3langid (its model ships in the wheel) on a sample of the prose (its start and end),
  so a Latin-script trace in French is told apart from English.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

# word units per script; Greek is left out on purpose: α, θ, π are math, not language
SCRIPTS: dict[str, str] = {
    "latin": r"\p{Latin}{2,}",
    "han": r"\p{Han}",
    "kana": r"[\p{Hiragana}\p{Katakana}]",
    "hangul": r"\p{Hangul}",
    "cyrillic": r"\p{Cyrillic}{2,}",
    "arabic": r"\p{Arabic}{2,}",
    "hebrew": r"\p{Hebrew}{2,}",
    "devanagari": r"\p{Devanagari}+",
    "thai": r"\p{Thai}+",
}
# The language codes py3langid identifies (its model's classes): anything else can never match.
KNOWN_LANGUAGES = frozenset(
    [
        "ace",
        "af",
        "am",
        "an",
        "ar",
        "ary",
        "arz",
        "as",
        "az",
        "ba",
        "bcl",
        "be",
        "bg",
        "bn",
        "br",
        "bs",
        "ca",
        "crh",
        "cs",
        "cy",
        "da",
        "de",
        "dz",
        "el",
        "en",
        "eo",
        "es",
        "et",
        "eu",
        "ext",
        "fa",
        "fi",
        "fo",
        "fr",
        "fuv",
        "fy",
        "ga",
        "gcf",
        "gcr",
        "gd",
        "gl",
        "gom",
        "grc",
        "gu",
        "gug",
        "guw",
        "ha",
        "hbo",
        "he",
        "hi",
        "hr",
        "ht",
        "hu",
        "hy",
        "id",
        "ig",
        "is",
        "it",
        "ja",
        "jv",
        "ka",
        "kab",
        "kik",
        "kk",
        "km",
        "kn",
        "ko",
        "ku",
        "ky",
        "la",
        "lb",
        "lg",
        "lij",
        "ln",
        "lo",
        "lt",
        "ltg",
        "lv",
        "mg",
        "mk",
        "ml",
        "mn",
        "mr",
        "ms",
        "mt",
        "my",
        "ne",
        "nl",
        "nn",
        "no",
        "nso",
        "oc",
        "om",
        "or",
        "pa",
        "pcm",
        "pl",
        "ps",
        "pt",
        "qu",
        "ro",
        "ru",
        "rw",
        "sa",
        "sdh",
        "se",
        "si",
        "sk",
        "sl",
        "sn",
        "so",
        "sq",
        "sr",
        "st",
        "sv",
        "sw",
        "ta",
        "te",
        "tg",
        "th",
        "tk",
        "tl",
        "tr",
        "tt",
        "ug",
        "uk",
        "ur",
        "uz",
        "uzs",
        "vec",
        "vi",
        "vo",
        "wa",
        "wuu",
        "xh",
        "yo",
        "yue",
        "zh",
        "zu",
    ]
)
# which script a language is written in (languages not listed are taken as Latin-script)
LANGUAGE_SCRIPT = {
    "zh": "han",
    "ja": "kana",
    "ko": "hangul",
    "ru": "cyrillic",
    "uk": "cyrillic",
    "bg": "cyrillic",
    "ar": "arabic",
    "fa": "arabic",
    "he": "hebrew",
    "hi": "devanagari",
    "th": "thai",
}
_NON_LATIN = "|".join(rx for name, rx in SCRIPTS.items() if name != "latin")
_MATH = r"\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]|\\\(.*?\\\)|\\[A-Za-z]+|```.*?```"


def strip_math(expr: pl.Expr) -> pl.Expr:
    """Prose only: LaTeX math, commands and code fences removed (they are language-neutral)."""
    return expr.fill_null("").str.replace_all("(?s)" + _MATH, " ")


def target_script(language: str) -> str:
    return LANGUAGE_SCRIPT.get(language, "latin")


def language_share(texts: pl.Series, language: str = "en", *, min_chunk_units: int = 1) -> pl.Series:
    """Share (0..1) of each text's word units that lie in chunks written in `language`'s script.

    Texts with no word units at all (pure math) get 1.0: there is nothing to mix.
    """
    target = target_script(language)
    frame = pl.DataFrame({"t": texts}).with_row_index("row")
    if target == "latin":  # fast path: most traces hold no letter of another script at all
        foreign = frame["t"].fill_null("").str.contains(_NON_LATIN)
        if not foreign.any():
            return pl.Series("share", [1.0] * frame.height, dtype=pl.Float64)
        sub = frame.filter(foreign)
        mixed = _chunk_share(sub.drop("row").with_row_index("row"), target, min_chunk_units)
        return pl.Series("share", [1.0] * frame.height, dtype=pl.Float64).scatter(sub["row"], mixed)
    return _chunk_share(frame, target, min_chunk_units)


def _chunk_share(frame: pl.DataFrame, target: str, min_chunk_units: int) -> pl.Series:
    chunks = frame.select("row", strip_math(pl.col("t")).str.split("\n").alias("c")).explode("c")
    counts = chunks.with_columns([pl.col("c").str.count_matches(rx).alias(s) for s, rx in SCRIPTS.items()])
    units = counts.select(list(SCRIPTS)).to_numpy()
    weight = units.sum(axis=1)
    best = units.argmax(axis=1)
    on_target = (best == list(SCRIPTS).index(target)) & (weight >= min_chunk_units)
    per_row = pl.DataFrame({"row": counts["row"], "w": weight, "on": np.where(on_target, weight, 0)})
    agg = per_row.group_by("row").agg(pl.col("w").sum(), pl.col("on").sum())
    out = frame.select("row").join(agg, on="row", how="left").sort("row")
    share = pl.when(pl.col("w") > 0).then(pl.col("on") / pl.col("w")).otherwise(1.0)
    return out.select(share.alias("share"))["share"]


@dataclass
class LanguageIdentifier:
    """py3langid with its bundled model, loaded once per filter pass (no global state)."""

    sample_chars: int = 200

    def __post_init__(self) -> None:
        from py3langid.langid import MODEL_FILE
        from py3langid.langid import LanguageIdentifier as _Model

        self._model = _Model.from_model_file(MODEL_FILE, norm_probs=True)

    def identify(self, texts: pl.Series) -> tuple[pl.Series, pl.Series]:
        """(language code or null, confidence) per text, from its prose's first and last `sample_chars`."""
        k = self.sample_chars
        t = pl.col("t").fill_null("")
        sample = (
            pl.when(t.str.len_chars() > 8 * k)
            .then(  # cut first: the regexes then see 8k chars, not 20 KB
                pl.concat_str([t.str.slice(0, 4 * k), t.str.slice(-4 * k)], separator="\n")
            )
            .otherwise(t)
        )
        prose = pl.DataFrame({"t": texts}).select(
            strip_math(sample).str.replace_all(r"[\d\W_]+", " ").str.strip_chars().alias("t")
        )["t"]
        langs: list[str | None] = []
        probs: list[float | None] = []
        for text in prose.to_list():
            if not text or len(text) < 20:
                langs.append(None)
                probs.append(None)
                continue
            if len(text) > 2 * k:  # the start and the end: where a drift into another language shows
                text = f"{text[:k]} {text[-k:]}"
            lang, prob = self._model.classify(text)
            langs.append(lang)
            probs.append(float(prob))
        return pl.Series(langs, dtype=pl.String), pl.Series(probs, dtype=pl.Float64)
