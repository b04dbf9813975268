"""The prompt file of one benchmark: each item's user turn, gold answer and tests, as the verifiers expect.

Math follows DeepSeek-R1 (the problem, then "Please reason step by step, and put your final answer
within \\boxed{}."), multiple choice is asked for a boxed letter over options shuffled per item,
HumanEval shows the function stub, MBPP the task and its asserts, and LiveCodeBench uses its own
prompt format with its test cases turned into stdin/stdout cases or asserts on `Solution()`.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import random
import zlib
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.errors import InputError

if TYPE_CHECKING:
    from distill.evaluation.benchmarks import Benchmark
    from distill.evaluation.config import EvalConfig

PROMPT_COLUMN = "eval_prompt"  # the rendered user turn in EVALDIR/<benchmark>/prompts.jsonl
CODE_PREFIX_COLUMN = "code_prompt"  # HumanEval's stub (imports, signature), put before the answer's program
TESTS_COLUMN = "tests"  # LiveCodeBench's cases in a shape filters.code.parse_tests reads
LETTERS = "ABCDEFGHIJ"  # multiple-choice options, in order

CODE_ANSWER_FORMAT = (
    "Reason step by step, then give the complete function, with its imports, in one ```python code block."
)
LCB_INTRO = (
    "You will be given a question (problem specification) and will generate a correct Python program "
    "that matches the specification and passes all tests."
)
LCB_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your "
    "code within delimiters."
)
LCB_STDIN = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test "
    "on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
    "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT."
)


def prompt_rows(cfg: EvalConfig, bench: Benchmark) -> list[dict[str, Any]]:
    """The prompt file's rows: the benchmark's columns, the rendered prompt and the benchmark's name."""
    rows = []
    for number, row in enumerate(bench.rows.iter_rows(named=True), start=1):
        problem = row.get("problem")
        if not isinstance(problem, str) or not problem.strip():  # never sent as the text "None"
            raise InputError("empty or missing problem", path=bench.spec.name, row=number, field="problem")
        if bench.spec.kind == "choice":
            row = _shuffle_choices(cfg, row) if "Incorrect Answer 1" in row else _listed_choices(bench, row)
        if bench.spec.prompt_style == "livecodebench":
            row = {**row, TESTS_COLUMN: livecodebench_tests(row)}
        row = {**row, PROMPT_COLUMN: render_prompt(cfg, bench, row), schema.SOURCE: bench.spec.name}
        row.pop("_choices", None)
        if schema.PROMPT in row:  # HumanEval's function stub: `prompt` is generation's rendered prompt
            row[CODE_PREFIX_COLUMN] = row.pop(schema.PROMPT)
        rows.append(row)
    return rows


def render_prompt(cfg: EvalConfig, bench: Benchmark, row: dict[str, Any]) -> str:
    """The user turn for one benchmark item."""
    kind, problem = bench.spec.kind, str(row["problem"])
    if bench.spec.prompt_style == "livecodebench":
        starter = (row.get("starter_code") or "").strip()
        tail = (
            f"{LCB_STARTER}\n```python\n{starter}\n```"
            if starter
            else f"{LCB_STDIN}\n```python\n# YOUR CODE HERE\n```"
        )
        return f"{LCB_INTRO}\n\nQuestion: {problem.strip()}\n\n{tail}"
    if kind == "code" and row.get("test_list"):  # MBPP: the asserts name the function to write
        tests = "\n".join(row["test_list"])
        return f"{problem.strip()} Your code should pass these tests:\n\n{tests}\n\n{CODE_ANSWER_FORMAT}"
    if kind == "code":
        return f"{cfg.code_instruction}\n\n```python\n{problem.rstrip()}\n```"
    if kind == "choice":
        options = "\n".join(f"{LETTERS[i]}) {opt}" for i, opt in enumerate(row["_choices"]))
        return f"{cfg.choice_instruction}\n\n{problem.strip()}\n\n{options}"
    return f"{problem.strip()}\n{cfg.math_instruction}"


def _listed_choices(bench: Benchmark, row: dict[str, Any]) -> dict[str, Any]:
    """A user's multiple-choice file: options in its `choices`/`options` list; the gold (letter, index or text) as a letter."""
    options = row.get("choices", row.get("options"))
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            options = None
    if not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS):
        raise InputError(
            f"expected a list of 2–{len(LETTERS)} options",
            path=bench.path,
            field=f"choices of item {row.get('id')}",
        )
    texts = [str(o).strip() for o in options]
    gold = str(row.get("answer") or "").strip()
    if gold.upper() in LETTERS[: len(texts)] and len(gold) == 1:
        letter = gold.upper()
    elif gold.isdigit() and int(gold) < len(texts):
        letter = LETTERS[int(gold)]
    elif gold in texts:
        letter = LETTERS[texts.index(gold)]
    else:
        raise InputError(
            f"answer {gold!r} is not a letter, an index or one of the options",
            path=bench.path,
            field=f"answer of item {row.get('id')}",
        )
    return {**row, "_choices": texts, "answer": letter}


def _shuffle_choices(cfg: EvalConfig, row: dict[str, Any]) -> dict[str, Any]:
    """GPQA: the right answer and the wrong ones in a seeded order per item; the gold becomes a letter."""
    wrong = [row.get(f"Incorrect Answer {i}") for i in (1, 2, 3)]
    choices = [row["answer"], *[w for w in wrong if w is not None]]
    order = list(range(len(choices)))
    random.Random(f"{cfg.seed}:{row['id']}").shuffle(order)
    return {**row, "_choices": [str(choices[i]).strip() for i in order], "answer": LETTERS[order.index(0)]}


# ── LiveCodeBench test cases ─────────────────────────────────────────────────
def livecodebench_tests(row: dict[str, Any]) -> str | None:
    """Public and private cases as JSON: stdin/stdout cases, or asserts on `Solution().<func>` (LeetCode)."""
    try:
        cases = [*_cases(row.get("public_test_cases")), *_cases(row.get("private_test_cases"))]
    except (
        ValueError,
        zlib.error,
        pickle.UnpicklingError,
    ) as e:  # binascii.Error and JSON errors are ValueErrors
        raise InputError(
            f"unreadable test cases: {e}", row=None, field=f"livecodebench item {row.get('id')}"
        ) from e
    if not cases:
        return None
    if all(c.get("testtype", "stdin") == "stdin" for c in cases):
        return json.dumps([{"input": c["input"], "output": c["output"]} for c in cases])
    metadata = row.get("metadata")
    meta = json.loads(metadata) if isinstance(metadata, str) and metadata.strip() else (metadata or {})
    func = meta.get("func_name") if isinstance(meta, dict) else None
    if not func:
        return None
    asserts = []
    for c in cases:
        try:
            args = [json.loads(line) for line in str(c["input"]).splitlines() if line.strip()]
            expected = json.loads(str(c["output"]))
        except json.JSONDecodeError:
            return None
        asserts.append(f"assert Solution().{func}(*{args!r}) == {expected!r}")
    return json.dumps(asserts)


def _cases(value: Any) -> list[dict[str, Any]]:
    """Test cases from LiveCodeBench's JSON, or its compressed form (base64 of zlib of a pickled JSON string)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    text = str(value).strip()
    if not text:
        return []
    if not text.startswith("["):
        text = _unpickle_string(zlib.decompress(base64.b64decode(text)))
    cases = json.loads(text)
    return cases if isinstance(cases, list) else []


class _StringsOnly(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference is refused (the data is not trusted)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from benchmark data")


def _unpickle_string(data: bytes) -> str:
    value = _StringsOnly(io.BytesIO(data)).load()
    if not isinstance(value, str):
        raise pickle.UnpicklingError("expected a JSON string in LiveCodeBench's private test cases")
    return value
