"""Bad input through the real CLI: a clear one-line error, nothing lost (issue #15's sweep, as a table).

Each `Case` acts like an adversarial user (files, flags, a local teacher with a fault schedule, real
`distill` subprocesses), then the table checks the exit code, the one-line error (`error: …`
naming the file, row or field, never a traceback) and, with `check`, that no data was lost.
A new finding joins the table: write its `act` (and `check`) and add a `Case` to CASES.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugins.badinput import Ctx, Result

FAST = ("--set", "generate.retry_initial_s=0", "--set", "generate.retry_max_s=0")


@dataclass(frozen=True)
class Case:
    id: str
    act: Callable[[Ctx], Result]  # set the scene and run commands; returns the process to judge
    rc: int  # its exit code
    error: str | None = None  # regex the one-line error must match (rc != 0), or the output (rc == 0)
    check: Callable[[Ctx], None] | None = None  # nothing lost: what the files must still hold


def _write_all(ctx: Ctx, run: str, rows: list[dict]) -> None:
    import polars as pl

    folder = ctx.tmp / run / "data" / "all"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    pl.DataFrame(rows).write_parquet(folder / "train-00000-of-00001.parquet")


def _read_all(ctx: Ctx, run: str = "run") -> list[dict]:
    import polars as pl

    return pl.read_parquet(ctx.tmp / run / "data" / "all" / "*.parquet").to_dicts()


# ── D: data lost or corrupted ──────────────────────────────────────────────
def d1_act(ctx: Ctx) -> Result:
    _write_all(ctx, "run", [{"prompt_id": f"hub-{i}", "sample": 0, "problem": f"p{i}"} for i in range(30)])
    return ctx.generate(ctx.prompts(5))


def d1_check(ctx: Ctx) -> None:
    assert ctx.rows() == 30


def d2_act(ctx: Ctx) -> Result:
    """verify / filter / card while generate is adding samples are refused (the run's lock)."""
    prompts = ctx.prompts(4)
    assert ctx.generate(prompts, n=1).rc == 0
    hanging = ctx.teacher(rates={"hang": 1.0}, hang_s=120)
    gen = ctx.popen(
        "generate", str(prompts), "--out", "run", "--base-url", hanging.base_url, "--n", "2", "--quiet"
    )
    try:
        assert hanging.wait_for_requests(1), "the second generate never sent a request"
        results = [ctx.distill(stage, "run", "--quiet") for stage in ("verify", "filter")]
        results.append(ctx.distill("card", "run"))
    finally:
        gen.send_signal(signal.SIGINT)
        gen.communicate(timeout=60)
    for result in results[:-1]:
        assert result.rc == 1 and re.search(r"in use|being generated", result.error_line), result
    return results[-1]


def d2_check(ctx: Ctx) -> None:
    assert ctx.rows() == ctx.stored(status="ok") == 4


def d2_repair_act(ctx: Ctx) -> Result:
    """data/all lost rows to a race: the next generate exports them again."""
    assert ctx.generate(ctx.prompts(5)).rc == 0
    _write_all(ctx, "run", _read_all(ctx)[:6])
    return ctx.generate(ctx.tmp / "prompts.jsonl")


def d2_repair_check(ctx: Ctx) -> None:
    assert ctx.rows() == ctx.stored() == 10


def d3_act(ctx: Ctx) -> Result:
    first = ctx.prompts(3, "a.jsonl", meta=lambda i: {"k": i})
    assert ctx.generate(first).rc == 0
    second = ctx.tmp / "b.jsonl"
    second.write_text("".join(json.dumps({"problem": f"Other {i}?", "meta": [i]}) + "\n" for i in range(3)))
    ctx.servers[0].request_count = 0
    return ctx.generate(second)


def d3_check(ctx: Ctx) -> None:
    assert ctx.servers[0].request_count == 0, "requests were paid for before the input was refused"
    rows = _read_all(ctx)
    assert len(rows) == 6 and all(r["prompt"] and r["messages"] for r in rows)


def d3_sft_act(ctx: Ctx) -> Result:
    assert ctx.generate(ctx.prompts(3)).rc == 0
    rows = _read_all(ctx)
    rows[0]["prompt"] = None
    _write_all(ctx, "run", rows)
    return ctx.distill("card", "run")


def d3_sft_check(ctx: Ctx) -> None:
    import polars as pl

    sft = pl.read_parquet(ctx.tmp / "run" / "data" / "sft" / "*.parquet")
    assert sft.height == 5, "a row without a prompt reached data/sft"


def d4_act(ctx: Ctx) -> Result:
    assert ctx.generate(ctx.prompts(5)).rc == 0
    _write_all(ctx, "run", _read_all(ctx) * 2)
    return ctx.distill("verify", "run", "--quiet")


def d4_check(ctx: Ctx) -> None:
    assert ctx.rows() == 20


def d5_generate_act(ctx: Ctx) -> Result:
    (ctx.tmp / "notes").mkdir()
    (ctx.tmp / "notes" / "README.md").write_text("my notes\n")
    return ctx.generate(ctx.prompts(2), "notes")


def d5_card_act(ctx: Ctx) -> Result:
    assert ctx.generate(ctx.prompts(3)).rc == 0
    (ctx.tmp / "run" / "README.md").write_text("my notes\n")
    return ctx.distill("card", "run")


def d5_check_notes(folder: str) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        assert (ctx.tmp / folder / "README.md").read_text() == "my notes\n"

    return check


def d6_blank_benchmark_act(ctx: Ctx) -> Result:
    assert ctx.generate(ctx.prompts(5)).rc == 0
    bench = ctx.tmp / "bench.jsonl"
    bench.write_text(
        json.dumps({"problem": ""})
        + "\n"
        + json.dumps({"problem": "?!."})
        + "\n"
        + json.dumps({"problem": None})
        + "\n"
        + json.dumps({"problem": "A long unrelated benchmark question about triangles"})
        + "\n"
    )
    return ctx.distill("filter", "run", "--benchmark", f"math500={bench}", "--quiet")


def d6_blank_benchmark_check(ctx: Ctx) -> None:
    assert all(r["contaminated_by"] is None for r in _read_all(ctx))


def d6_empty_prompt_act(ctx: Ctx) -> Result:
    assert ctx.generate(ctx.prompts(5)).rc == 0
    rows = _read_all(ctx)
    for row in rows[:4]:
        row["prompt"] = ""
    _write_all(ctx, "run", rows)
    return ctx.distill("filter", "run", "--quiet")


# ── C: crashes, tracebacks and hangs ───────────────────────────────────────
def c1_c2_act(ctx: Ctx) -> Result:
    return ctx.generate(ctx.prompts(3, big=lambda i: 2**70 + i))


def c1_empty_struct_act(ctx: Ctx) -> Result:
    """`{}` in every row: Parquet has no empty struct; the export must not fail after the teacher was paid."""
    return ctx.generate(ctx.prompts(3, meta=lambda i: {}))


def c3_act(ctx: Ctx) -> Result:
    path = ctx.tmp / "p.jsonl"
    path.write_text('{"problem": "ok?"}\n{"problem": "bad \\ud800 text"}\n')
    return ctx.generate(path)


def c4_act(kind: str) -> Callable[[Ctx], Result]:
    def act(ctx: Ctx) -> Result:
        ctx.teacher(schedule={1: kind})
        stream = ("--set", "generate.stream=true") if kind == "bad_event" else ()
        return ctx.generate(ctx.prompts(5), "run", *FAST, *stream, "--concurrency", "1")

    return act


def all_ok(count: int) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        assert ctx.stored(status="ok") == count and ctx.rows() == count

    return check


def c5_act(kind: str) -> Callable[[Ctx], Result]:
    def act(ctx: Ctx) -> Result:
        ctx.teacher(schedule={1: kind}, hang_s=600, trickle_s=0.3)
        return ctx.generate(
            ctx.prompts(2),
            "run",
            *FAST,
            "--concurrency",
            "1",
            "--set",
            "generate.request_timeout_s=3",
            "--set",
            "generate.read_timeout_s=2",
            timeout=90,
        )

    return act


def c6_act(ctx: Ctx) -> Result:
    """Ctrl-C during a first run: a message, and data/all holds what the store holds."""
    server = ctx.teacher(schedule={3: "hang"}, hang_s=600)
    proc = ctx.popen(
        "generate",
        str(ctx.prompts(4)),
        "--out",
        "run",
        "--base-url",
        server.base_url,
        "--n",
        "1",
        "--concurrency",
        "1",
        "--quiet",
    )
    assert server.wait_for_requests(3), "the first two samples never came back"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "2 samples are stored" in err, err
    return Result(("generate", "(Ctrl-C)"), proc.returncode, out, err)


def c6_check(ctx: Ctx) -> None:
    assert ctx.stored(status="ok") == 2 and ctx.rows() == 2


def _generated(ctx: Ctx, n: int = 3) -> None:
    assert ctx.generate(ctx.prompts(n)).rc == 0


def c7_disk_full_act(ctx: Ctx) -> Result:
    """Files may not grow past 300 KB (RLIMIT_FSIZE, as a full disk): one line, and a rerun completes."""
    from distill.testing.local_server import SizedResponder

    server = ctx.teacher(SizedResponder(20000))
    prompts = ctx.prompts(40)
    args = ("generate", prompts, "--out", "run", "--base-url", server.base_url, "--n", "2", "--quiet")
    full = ctx.distill(*args, max_file_bytes=300_000, env=ctx.env(PYTHONDONTWRITEBYTECODE="1"))
    assert full.rc == 1 and "Traceback" not in full.stderr, full
    assert re.search(r"store\.sqlite.*disk full", full.error_line), full
    return ctx.distill(*args)


def c8_act(name: str) -> Callable[[Ctx], Result]:
    def act(ctx: Ctx) -> Result:
        _generated(ctx)
        (ctx.tmp / "run" / name).write_text('{"stages": {"generate": ')
        return ctx.distill("verify", "run", "--quiet")

    return act


def c10_act(ctx: Ctx) -> Result:
    _generated(ctx)
    shard = next((ctx.tmp / "run" / "data" / "all").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:100])  # truncated
    return ctx.distill("verify", "run", "--quiet")


def c10_regenerate_act(ctx: Ctx) -> Result:
    _generated(ctx)
    shard = next((ctx.tmp / "run" / "data" / "all").glob("*.parquet"))
    shard.write_bytes(b"not parquet at all")
    return ctx.generate(ctx.tmp / "prompts.jsonl")


def c11_act(ctx: Ctx) -> Result:
    _generated(ctx)
    rows = _read_all(ctx)
    for row in rows:
        row["sample"] = str(row["sample"])
    _write_all(ctx, "run", rows)
    return ctx.distill("verify", "run", "--quiet")


def c12_recipe_dir_act(ctx: Ctx) -> Result:
    (ctx.tmp / "recipes").mkdir()
    return ctx.distill("run", ctx.tmp / "recipes")


def c12_prompts_dir_act(ctx: Ctx) -> Result:
    (ctx.tmp / "prompts.jsonl").mkdir()
    ctx.teacher()
    return ctx.generate(ctx.tmp / "prompts.jsonl")


def c12_out_file_act(ctx: Ctx) -> Result:
    (ctx.tmp / "out.txt").write_text("mine\n")
    return ctx.generate(ctx.prompts(2), "out.txt")


def c12_override_not_yaml_act(ctx: Ctx) -> Result:
    ctx.teacher()
    return ctx.generate(ctx.prompts(2), "run", "--set", "generate.extra_body={top_k: [1,")


def c12_key_cr_act(ctx: Ctx) -> Result:
    server = ctx.teacher()
    return ctx.distill(
        "generate",
        ctx.prompts(2),
        "--out",
        "run",
        "--base-url",
        server.base_url,
        "--api-key-env",
        "MY_KEY",
        "--quiet",
        env=ctx.env(MY_KEY="sk-abc\r"),
    )


def c12_sft_model_missing_act(ctx: Ctx) -> Result:
    recipe = ctx.tmp / "student.yaml"
    recipe.write_text("sft:\n  model: ./no/such/model\n")
    _generated(ctx)
    return ctx.distill("sft", recipe, "--dataset", "run", "--dry-run")


# ── U: silent misbehaviour ─────────────────────────────────────────────────
def u1_act(kind: str) -> Callable[[Ctx], Result]:
    def act(ctx: Ctx) -> Result:
        ctx.teacher(rates={kind: 1.0})
        return ctx.generate(ctx.prompts(3), "run", *FAST, "--set", "generate.max_attempts=2")

    return act


def u1_run_stops_act(ctx: Ctx) -> Result:
    server = ctx.teacher(rates={"400": 1.0})
    recipe = ctx.tmp / "recipe.yaml"
    recipe.write_text(
        f"run_dir: run\nstages: [generate, verify]\ngenerate:\n  prompts: {ctx.prompts(2)}\n  n: 1\n"
        f"  base_url: [{server.base_url}]\n  retry_initial_s: 0\n"
    )
    return ctx.distill("run", recipe, "--quiet")


def u1_no_v1_act(ctx: Ctx) -> Result:
    server = ctx.teacher()
    return ctx.distill(
        "generate", ctx.prompts(2), "--out", "run", "--base-url", server.base_url[: -len("/v1")], "--quiet"
    )


def u2_act(ctx: Ctx) -> Result:
    server = ctx.teacher()
    prompts = ctx.prompts(2)
    first = ctx.distill(
        "generate", prompts, "--out", "run", "--base-url", server.base_url, "--model", "nope", "--quiet"
    )
    assert first.rc == 1, first
    return ctx.generate(prompts)


def u3_act(ctx: Ctx) -> Result:
    ctx.teacher()
    return ctx.generate(ctx.prompts(3), "run", "--template", "templates/mathh.txt")


def u3_placeholder_act(ctx: Ctx) -> Result:
    ctx.teacher()
    return ctx.generate(ctx.prompts(3), "run", "--template", "Solve {problme} now")


def u4_act(kind: str) -> Callable[[Ctx], Result]:
    def act(ctx: Ctx) -> Result:
        ctx.teacher(schedule={1: kind})
        return ctx.generate(ctx.prompts(3), "run", *FAST, "--concurrency", "1")

    return act


def all_answered(count: int) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        all_ok(count)(ctx)
        assert all(r["answer_text"] for r in _read_all(ctx)), "an empty answer was stored as a success"

    return check


def u5_act(ctx: Ctx) -> Result:
    server = ctx.teacher()
    bare = server.base_url.removeprefix("http://")
    return ctx.distill("generate", ctx.prompts(2), "--out", "run", "--base-url", bare, "--quiet")


def u6_u8_act(stage: str, setting: str) -> Callable[[Ctx], Result]:
    def act(ctx: Ctx) -> Result:
        _generated(ctx, 2)
        return ctx.distill(stage, "run", "--quiet", "--set", setting)

    return act


def u8_generate_act(setting: str) -> Callable[[Ctx], Result]:
    def act(ctx: Ctx) -> Result:
        ctx.teacher()
        return ctx.generate(ctx.prompts(2), "run", "--set", setting)

    return act


def u8_pass_rates_act(ctx: Ctx) -> Result:
    _generated(ctx, 2)
    return ctx.distill(
        "filter", "run", "--set", "filter.min_pass_rate=0.9", "--set", "filter.max_pass_rate=0.1"
    )


def u7_act(ctx: Ctx) -> Result:
    path = ctx.tmp / "p.jsonl"
    path.write_text('{"problem": "a?"}\n\n\n{"problem": "  "}\n')
    ctx.teacher()
    return ctx.generate(path)


def u9_act(ctx: Ctx) -> Result:
    ctx.teacher()
    return ctx.generate(ctx.prompts(2, keep=lambda i: True))


def u10_act(ctx: Ctx) -> Result:
    server = ctx.teacher()
    bench = ctx.tmp / "math500.jsonl"
    bench.write_text(
        json.dumps({"problem": "1+1?", "answer": "2"})
        + "\n"
        + json.dumps({"problem": None, "answer": "3"})
        + "\n"
    )
    return ctx.distill(
        "eval",
        "--model",
        "local-teacher",
        "--base-url",
        server.base_url,
        "--benchmark",
        f"math500={bench}",
        "--out",
        "evals",
        "--quiet",
    )


def u11_act(ctx: Ctx) -> Result:
    ctx.teacher()
    return ctx.generate("./no/such/folder")


def u13_act(ctx: Ctx) -> Result:
    _generated(ctx, 2)
    return ctx.distill("merge", "run", "--out", "run")


def u13_twice_act(ctx: Ctx) -> Result:
    _generated(ctx, 2)
    return ctx.distill("merge", "run", "run", "--out", "merged")


def u14_check(ctx: Ctx) -> None:
    run = ctx.tmp / "run"
    for folder in (run, run / "data", run / "data" / "all", run / "generations"):
        assert folder.stat().st_mode & 0o777 == 0o755, f"{folder} is {oct(folder.stat().st_mode & 0o777)}"
    for file in (*(run / "data" / "all").glob("*.parquet"), run / "generations" / "prompts.parquet"):
        assert file.stat().st_mode & 0o044 == 0o044, f"{file} is {oct(file.stat().st_mode & 0o777)}"


def not_sent(ctx: Ctx) -> None:
    assert all(s.request_count == 0 for s in ctx.servers), "a request was paid for"


CASES = [
    Case("D1-out-holds-foreign-data-all", d1_act, 1, r"data/all holds 30 rows.*store", d1_check),
    Case("D2-stages-take-the-run-lock", d2_act, 1, r"in use|being generated", d2_check),
    Case("D2-generate-re-exports-missing-rows", d2_repair_act, 0, None, d2_repair_check),
    Case("D3-extra-column-changes-type", d3_act, 1, r"b\.jsonl.*'meta'", d3_check),
    Case("D3-no-prompt-never-reaches-sft", d3_sft_act, 0, None, d3_sft_check),
    Case("D4-duplicate-keys-in-data-all", d4_act, 1, r"data/all.*duplicate", d4_check),
    Case("D5-generate-into-non-run-folder", d5_generate_act, 1, r"notes.*not a run", d5_check_notes("notes")),
    Case("D5-card-keeps-foreign-readme", d5_card_act, 1, r"README\.md", d5_check_notes("run")),
    Case("D6-blank-benchmark-item", d6_blank_benchmark_act, 0, None, d6_blank_benchmark_check),
    Case("D6-empty-prompt-rows-filter", d6_empty_prompt_act, 0),
    Case("C1-C2-int-above-64-bits", c1_c2_act, 1, r"prompts\.jsonl.*row 1.*'big'", not_sent),
    Case("C1-export-of-an-empty-struct-column", c1_empty_struct_act, 0, None, all_ok(6)),
    Case("C3-lone-surrogate-in-prompt", c3_act, 1, r"p\.jsonl.*row 2.*'problem'", not_sent),
    *[
        Case(f"C4-malformed-200-{k}", c4_act(k), 0, None, all_answered(10))
        for k in ("content_list", "content_int", "usage_list", "usage_string", "usage_huge", "bad_event")
    ],
    *[Case(f"C5-teacher-{k}", c5_act(k), 0, None, all_ok(4)) for k in ("hang", "trickle")],
    Case("C7-disk-full-then-rerun", c7_disk_full_act, 0, None, all_ok(80)),
    *[Case(f"C8-corrupt-{n}", c8_act(n), 1, re.escape(n)) for n in ("manifest.json", "stats.json")],
    Case("C10-truncated-shard-is-named", c10_act, 1, r"train-00000-of-00001\.parquet"),
    Case("C10-generate-re-exports-a-junk-shard", c10_regenerate_act, 0, None, all_ok(6)),
    Case("C11-wrong-column-type-in-data-all", c11_act, 1, r"data/all.*'sample'"),
    Case("C12-recipe-is-a-directory", c12_recipe_dir_act, 1, r"recipes(: is a folder|: no such file)"),
    Case("C12-prompts-is-a-directory", c12_prompts_dir_act, 1, r"prompts\.jsonl"),
    Case("C12-out-is-a-file", c12_out_file_act, 1, r"out\.txt.*file"),
    Case("C12-override-not-yaml", c12_override_not_yaml_act, 1, r"--set.*extra_body"),
    Case("C12-api-key-with-cr", c12_key_cr_act, 1, r"MY_KEY", not_sent),
    Case("C12-sft-model-missing", c12_sft_model_missing_act, 1, r"no/such/model"),
    Case("C6-ctrl-c-first-run", c6_act, 130, r"interrupted.*rerun", c6_check),
    *[
        Case(f"U1-every-request-fails-{k}", u1_act(k), 1, r"no sample.*" + re.escape(m), None)
        for k, m in (
            ("400", "HTTP 400"),
            ("404", "HTTP 404"),
            ("413", "HTTP 413"),
            ("501", "HTTP 501"),
            ("html", "not JSON"),
            ("malformed", "malformed JSON"),
            ("empty_choices", "no choices"),
        )
    ],
    Case("U1-distill-run-stops", u1_run_stops_act, 1, r"no sample succeeded.*HTTP 400"),
    Case("U1-base-url-without-v1", u1_no_v1_act, 1, r"/v1", not_sent),
    Case("U2-failed-first-attempt-records-no-settings", u2_act, 0, None, all_ok(4)),
    Case("U3-template-path-missing", u3_act, 1, r"templates/mathh\.txt", not_sent),
    Case("U3-template-unknown-placeholder", u3_placeholder_act, 1, r"problme", not_sent),
    Case("U5-base-url-without-scheme", u5_act, 1, r"no scheme.*http://127\.0\.0\.1"),
    Case(
        "U6-set-errors-blame-the-flag",
        u6_u8_act("verify", "verify.item_timeout_s=-1"),
        1,
        r"error: override verify\.item_timeout_s=-1: item_timeout_s",
    ),
    Case("U8-workers-zero", u6_u8_act("verify", "verify.workers=0"), 1, r"workers"),
    Case("U8-unknown-language", u6_u8_act("filter", "filter.language=xx"), 1, r"language.*'xx'"),
    Case("U8-min-above-max-pass-rate", u8_pass_rates_act, 1, r"min_pass_rate 0\.9 > max_pass_rate 0\.1"),
    Case("U8-temperature-inf", u8_generate_act("generate.temperature=.inf"), 1, r"temperature", not_sent),
    Case(
        "U8-concurrency-millions",
        u8_generate_act("generate.concurrency=5000000"),
        1,
        r"concurrency",
        not_sent,
    ),
    Case("U7-row-is-the-file-line", u7_act, 1, r"p\.jsonl, row 4, field 'problem'", not_sent),
    Case("U9-input-column-collides-with-verdicts", u9_act, 1, r"prompts\.jsonl.*'keep'", not_sent),
    Case("U10-eval-null-problem", u10_act, 1, r"row 2.*'problem'", not_sent),
    Case("U11-missing-local-prompts-folder", u11_act, 1, r"no/such/folder.*(not found|no such)"),
    Case("U13-merge-out-is-an-input", u13_act, 1, r"one of the runs"),
    Case("U13-merge-a-run-twice", u13_twice_act, 1, r"given twice"),
    Case("U14-run-folders-are-0755", lambda ctx: ctx.generate(ctx.prompts(2)), 0, None, u14_check),
    *[
        Case(f"U4-{k}-is-retried", u4_act(k), 0, None, all_answered(6))
        for k in ("content_null", "content_empty")
    ],
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, ctx: Ctx) -> None:
    result = case.act(ctx)
    assert result.rc == case.rc, result
    assert "Traceback" not in result.stderr, result
    if case.rc not in (0,):
        assert result.error_line.startswith(("error: ", "interrupted")), result
        assert case.error is None or re.search(case.error, result.error_line), result
    if case.check is not None:
        case.check(ctx)


def test_sft_hint_names_distill_card(ctx: Ctx, tiny_model: Path) -> None:
    """A run with data/all but no data/sft: the error says which command writes it."""
    _generated(ctx, 2)
    recipe = ctx.tmp / "student.yaml"
    recipe.write_text(f"sft:\n  model: {tiny_model}\n")
    result = ctx.distill("sft", recipe, "--dataset", "run", "--dry-run")
    assert result.rc == 1 and "Traceback" not in result.stderr, result
    assert re.search(r"no `sft` view.*distill card", result.error_line), result
