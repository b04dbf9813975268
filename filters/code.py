"""Code verification: take the final program from a response and run it against tests in a sandbox.

Two test shapes are understood (`parse_tests`):
- stdin/stdout cases: `[{"input": …, "output": …}]` or `{"inputs": […], "outputs": […]}` (APPS/TACO);
  outputs are compared token by token (whitespace tolerant), numbers optionally within `float_tol`;
- assert-style tests: HumanEval (`{"test": …, "entry_point": …}` → `check(entry_point)`), MBPP
  (`{"test_list": […], "test_setup_code": …}`) or a plain list of `assert` lines.
Each test gets its own result and failure kind; the program runs in `filters.sandbox.Sandbox`.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from filters.sandbox import Sandbox, SandboxResult

__all__ = [
    "CodeVerdict",
    "StdioCase",
    "AssertSuite",
    "TestResult",
    "extract_program",
    "parse_tests",
    "verify_code",
]

Kind = Literal[
    "passed",
    "wrong_answer",
    "runtime_error",
    "timeout",
    "memory",
    "output_limit",
    "file_limit",
    "sandbox_error",
    "not_run",
]
PYTHON_TAGS = {"python", "py", "python3", "py3", "ipython"}
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class StdioCase:
    input: str
    output: str


@dataclass(frozen=True)
class AssertSuite:
    """Assert-style tests: `setup` runs after the program, then each test runs on its own."""

    tests: tuple[str, ...]
    setup: str = ""


@dataclass(frozen=True)
class TestResult:
    name: str
    kind: Kind
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "passed"


@dataclass(frozen=True)
class CodeVerdict:
    """ok: all tests passed (None when there are no tests); kind: the first failure's kind."""

    ok: bool | None
    kind: str
    detail: str = ""
    tests: tuple[TestResult, ...] = field(default=())
    isolation: str = ""

    def results_json(self) -> str:
        return json.dumps(
            {"kind": self.kind, "tests": [asdict(t) for t in self.tests], "isolation": self.isolation}
        )


def extract_program(answer_text: str | None, language: str = "python") -> str | None:
    """The last fenced code block in the language (or untagged); None when there is none."""
    if not answer_text:
        return None
    wanted = PYTHON_TAGS if language == "python" else {language.lower()}
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(answer_text)]
    for tag, body in reversed(blocks):
        if (tag in wanted or tag == "") and body.strip():
            return body
    return None


def parse_tests(tests: Any) -> Sequence[StdioCase] | AssertSuite | None:
    """Normalise the common test shapes; None when `tests` is empty or unrecognised."""
    if tests is None:
        return None
    if isinstance(tests, str):
        text = tests.strip()
        if not text:
            return None
        try:
            tests = json.loads(text)
        except json.JSONDecodeError:
            return AssertSuite((text,))  # a block of asserts
    if isinstance(tests, dict):
        if tests.get("test") and tests.get("entry_point"):
            return AssertSuite((f"{tests['test']}\ncheck({tests['entry_point']})",))
        if tests.get("test_list") is not None:
            return AssertSuite(tuple(tests["test_list"]), tests.get("test_setup_code") or "")
        if tests.get("inputs") is not None:
            return [
                StdioCase(_text(i), _text(o))
                for i, o in zip(tests["inputs"], tests.get("outputs") or [], strict=False)
            ]
        return None
    if isinstance(tests, (list, tuple)) and tests:
        if all(isinstance(t, dict) and "input" in t for t in tests):
            return [StdioCase(_text(t["input"]), _text(t.get("output", ""))) for t in tests]
        if all(isinstance(t, str) for t in tests):
            return AssertSuite(tuple(tests))
    return None


def verify_code(
    program_text: str | None,
    tests: Any,
    *,
    sandbox: Sandbox | None = None,
    slot: int = 0,
    float_tol: float | None = None,
    extract: bool = True,
    fail_fast: bool = False,
) -> CodeVerdict:
    """Run the program (taken from a response when `extract`) against `tests` in the sandbox."""
    suite = parse_tests(tests)
    if suite is None or (isinstance(suite, list) and not suite):
        return CodeVerdict(None, "no_tests", "no tests for this row")
    program = extract_program(program_text) if extract else program_text
    if not program:
        return CodeVerdict(False, "no_program", "no fenced Python block in the answer")
    if sandbox is None:  # a one-off call: a sandbox of its own, closed (uids, launcher) when done
        with Sandbox() as own:
            return verify_code(program, tests, sandbox=own, slot=slot, float_tol=float_tol, extract=False,
                               fail_fast=fail_fast)  # fmt: skip
    if isinstance(suite, AssertSuite):
        results = _run_asserts(sandbox, program, suite, slot)
    else:
        results = _run_stdio(sandbox, program, suite, slot, float_tol, fail_fast)
    failed = next((r for r in results if not r.ok), None)
    if failed is None:
        return CodeVerdict(True, "passed", f"{len(results)} tests passed", tuple(results), sandbox.isolation)
    passed = sum(r.ok for r in results)
    return CodeVerdict(
        False,
        failed.kind,
        f"{failed.name}: {failed.kind} ({passed}/{len(results)} passed) {failed.detail}"[:300],
        tuple(results),
        sandbox.isolation,
    )


# ── stdin/stdout ───────────────────────────────────────────────────────────
def _run_stdio(
    sandbox: Sandbox,
    program: str,
    cases: Sequence[StdioCase],
    slot: int,
    float_tol: float | None,
    fail_fast: bool,
) -> list[TestResult]:
    results: list[TestResult] = []
    for i, case in enumerate(cases):
        name = f"case {i}"
        # After a timeout the rest would most likely time out too: don't spend minutes proving it.
        if results and (results[-1].kind == "timeout" or (fail_fast and not results[-1].ok)):
            results.append(TestResult(name, "not_run"))
            continue
        run = sandbox.run_python(program, stdin=case.input, slot=slot)
        if run.status != "ok":
            results.append(TestResult(name, run.status, _why(run)))  # type: ignore[arg-type]
        elif outputs_match(run.stdout, case.output, float_tol):
            results.append(TestResult(name, "passed"))
        else:
            results.append(
                TestResult(name, "wrong_answer", f"got {run.stdout[:80]!r}, want {case.output[:80]!r}")
            )
    return results


def outputs_match(got: str, want: str, float_tol: float | None = None) -> bool:
    """Token-wise comparison, blind to whitespace; numbers within `float_tol` (absolute or relative)."""
    a, b = got.split(), want.split()
    if a == b:
        return True
    if float_tol is None or len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            return False
        if abs(fx - fy) > float_tol * max(1.0, abs(fy)):
            return False
    return True


# ── assert-style ───────────────────────────────────────────────────────────
# The harness runs inside the sandbox: the program, then the setup, then each test in turn, printing
# one tagged line per test as it finishes (so a test that hangs still leaves earlier results).
_HARNESS = r"""
import sys
TAG = {tag!r}
def report(name, kind, detail=""):
    sys.stdout.flush()
    sys.__stdout__.write("\n" + TAG + repr((name, kind, str(detail)[:200])) + "\n")
    sys.__stdout__.flush()
spec = {{}}
exec(open("spec.py", encoding="utf-8").read(), spec)
scope = {{"__name__": "solution"}}
def run(name, code):
    try:
        exec(compile(code, name, "exec"), scope)
    except AssertionError as e:
        report(name, "wrong_answer", repr(e))
    except MemoryError:
        report(name, "memory")
    except BaseException as e:
        report(name, "runtime_error", type(e).__name__ + ": " + str(e))
    else:
        return True
    return False
if run("program", open("solution.py", encoding="utf-8").read()) and run("setup", spec["SETUP"]):
    for i, test in enumerate(spec["TESTS"]):
        if run("test %d" % i, test):
            report("test %d" % i, "passed")
"""


def _run_asserts(sandbox: Sandbox, program: str, suite: AssertSuite, slot: int) -> list[TestResult]:
    tag = f"@@distill-{secrets.token_hex(8)}@@"
    # Plain Python literals in and out: the harness imports nothing (json alone costs ~8 ms a run).
    spec = f"TESTS = {list(suite.tests)!r}\nSETUP = {suite.setup!r}\n"
    run = sandbox.run_python(
        _HARNESS.format(tag=tag), files={"solution.py": program, "spec.py": spec}, slot=slot
    )
    by_name: dict[str, TestResult] = {}
    for line in run.stdout.splitlines():
        if line.startswith(tag):
            try:
                name, kind, detail = ast.literal_eval(line[len(tag) :])
            except (ValueError, SyntaxError, TypeError):
                continue  # a line the program forged or cut short
            by_name.setdefault(name, TestResult(name, kind, detail))
    results = []
    for i in range(len(suite.tests)):
        name = f"test {i}"
        if name in by_name:
            results.append(by_name[name])
        elif "program" in by_name or "setup" in by_name:
            failed = by_name.get("program") or by_name["setup"]
            results.append(TestResult(name, failed.kind, f"{failed.name} failed: {failed.detail}"))
        else:  # the run ended (timeout, memory, output cap) before this test reported
            kind = run.status if run.status != "ok" else "runtime_error"
            results.append(TestResult(name, kind, _why(run)))  # type: ignore[arg-type]
    return results


def _text(value: Any) -> str:
    return (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if not isinstance(value, (int, float))
        else str(value)
    )


def _why(run: SandboxResult) -> str:
    """The sandbox's reason (the limit or signal) and the program's last stderr line, for a human."""
    return "; ".join(part for part in (run.detail, _last_line(run.stderr)) if part)[:200]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
