"""Column names of a run's rows, defined once. Every module imports these; none retypes them.

One row per sample: a prompt asked for `n` samples yields `n` rows (DESIGN.md).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# identity
PROMPT_ID = "prompt_id"  # stable hash of the rendered prompt
SAMPLE = "sample"  # 0..n-1
PROMPT = "prompt"  # the rendered user turn sent to the teacher

# the trace
MESSAGES = (
    "messages"  # [{"role": "user", ...}, {"role": "assistant", "content": "<think>\n…\n</think>\n\n…"}]
)
REASONING = "reasoning"
ANSWER_TEXT = "answer_text"
COMPLETE = "complete"  # the reasoning was closed (</think> seen); never guessed

# provenance
TEACHER = "teacher"
FINISH_REASON = "finish_reason"
PROMPT_TOKENS = "prompt_tokens"
COMPLETION_TOKENS = "completion_tokens"
LATENCY_S = "latency_s"
ATTEMPTS = "attempts"
ERROR = "error"  # null when the request succeeded
TEMPERATURE = "temperature"
TOP_P = "top_p"
MAX_TOKENS = "max_tokens"
SEED = "seed"

# verification (true / false / null when not applicable)
MATH_VERIFIED = "math_verified"
CODE_VERIFIED = "code_verified"
FORMAT_OK = "format_ok"
VERIFY_DETAIL = "verify_detail"  # why a verifier said false/null (timeout, no gold, runtime error, ...)
# how the math verdict was reached: parsed, partial_parse, no_answer, gold_unparsed, timeout (rules), judge
VERDICT_REASON = "verdict_reason"
JUDGE_VERDICT = "judge_verdict"  # the LLM judge's verdict on a row the rules could not grade (verify.judge)
JUDGE_MODEL = "judge_model"
JUDGE_REASON = "judge_reason"  # the judge's explanation, or why it gave none
CODE_RESULTS = "code_results"  # JSON: per-test outcome and failure kind
CORRECT = "correct"  # the verdict used for selection: math or code, whichever applies
PASS_RATE = "pass_rate"  # per prompt: fraction of its samples verified correct

# filtering
KEEP = "keep"
REJECT_REASON = "reject_reason"  # first failing rule, null when kept
DUP_OF = "dup_of"
CONTAMINATED_BY = "contaminated_by"  # "benchmark:item_id" of the benchmark item the row overlaps
CONTAMINATION_METHOD = "contamination_method"  # exact | ngram | semantic | judge
CONTAMINATION_SCORE = "contamination_score"  # exact 1.0; ngram: share of the item's n-grams; else cosine
CONTAMINATION_SPANS = "contamination_spans"  # the longest token runs shared with the item, " | "-joined
LANGUAGE = "language"
LANGUAGE_SHARE = "language_share"  # share of the trace written in the target language's script
ANSWER_LANGUAGE = "answer_language"
REPETITION = "repetition"  # share of the reasoning's word n-grams that repeat earlier ones (loops → ~1)

# dataset
NUM_TOKENS = "num_tokens"
SOURCE = "source"

# Columns that generation owns; an input column with one of these names is an input error.
GENERATED_COLUMNS = (
    PROMPT_ID,
    SAMPLE,
    PROMPT,
    MESSAGES,
    REASONING,
    ANSWER_TEXT,
    COMPLETE,
    TEACHER,
    FINISH_REASON,
    PROMPT_TOKENS,
    COMPLETION_TOKENS,
    LATENCY_S,
    ATTEMPTS,
    ERROR,
    TEMPERATURE,
    TOP_P,
    MAX_TOKENS,
    SEED,
)
KEY = (PROMPT_ID, SAMPLE)
# Columns that the filter stage writes.
FILTER_COLUMNS = (
    KEEP,
    REJECT_REASON,
    DUP_OF,
    CONTAMINATED_BY,
    CONTAMINATION_METHOD,
    CONTAMINATION_SCORE,
    CONTAMINATION_SPANS,
    LANGUAGE,
    LANGUAGE_SHARE,
    ANSWER_LANGUAGE,
    REPETITION,
)
# Columns that verify, filter and the dataset step write: an input column of that name would be overwritten.
DERIVED_COLUMNS = (
    MATH_VERIFIED,
    CODE_VERIFIED,
    FORMAT_OK,
    VERIFY_DETAIL,
    CODE_RESULTS,
    CORRECT,
    PASS_RATE,
    *FILTER_COLUMNS,
    NUM_TOKENS,
)
