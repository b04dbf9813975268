"""`distill view` over real HTTP: filters and counts, bad URLs, bad runs, ports, headers, read-only.

The browser side (rendering, math, escaping as the user sees it, URL state) is in test_viewer_browser.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from html import escape as html_escape
from pathlib import Path

import polars as pl
import pytest

from distill import schema
from distill.errors import ConfigError, StageError
from distill.run import RunDir
from distill.viewer import Viewer
from tests.plugins.viewer import ROOT, SCRIPT, snapshot


def get(url: str, *, host: str | None = None, method: str = "GET") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def served(demo_run: Path) -> Iterator[Viewer]:
    with Viewer(demo_run, port=0).start() as viewer:
        yield viewer


def sample_links(html: str) -> list[tuple[str, str]]:
    """(prompt_id, sample) of every sample link on a page, in order (links carry the list's filters)."""
    return re.findall(r'href="/sample\?(?:[^"]*?&amp;)?id=(\w+)&amp;s=(\d+)"', html)


def count_on_page(html: str) -> int:
    return int(re.search(r'id="count"><strong>([\d,]+)</strong>', html).group(1).replace(",", ""))


def test_filters_and_counts_match_polars(served: Viewer, demo_run: Path):
    frame = RunDir(demo_run).read("all")
    status, _, html = get(served.url + "samples")
    assert status == 200 and count_on_page(html) == frame.height
    cases = {
        "reject_reason=incorrect": pl.col(schema.REJECT_REASON) == "incorrect",
        "keep=false&source=demo-math": (~pl.col(schema.KEEP)) & (pl.col(schema.SOURCE) == "demo-math"),
        "correct=true&pass_min=0.5&pass_max=0.9": pl.col(schema.CORRECT)
        & pl.col(schema.PASS_RATE).is_between(0.5, 0.9),
        "tok_min=120&finish_reason=stop": (pl.col(schema.COMPLETION_TOKENS) >= 120)
        & (pl.col(schema.FINISH_REASON) == "stop"),
        "contaminated_by=(any)": pl.col(schema.CONTAMINATED_BY).is_not_null(),
        "contaminated_by=gsm8k": pl.col(schema.CONTAMINATED_BY).str.starts_with("gsm8k:"),
        "math_verified=null": pl.col(schema.MATH_VERIFIED).is_null(),
        "q=EGGS": pl.any_horizontal(
            pl.col(c).str.to_lowercase().str.contains("eggs", literal=True).fill_null(False)
            for c in (schema.PROMPT, schema.REASONING, schema.ANSWER_TEXT)
        ),
    }
    for query, expected in cases.items():
        status, _, html = get(f"{served.url}samples?{query}")
        assert status == 200, query
        assert "ignored" not in html, query
        assert count_on_page(html) == frame.filter(expected).height, query
    # the facet counts follow the other filters: under keep=true no option counts a rejection
    _, _, html = get(served.url + "samples?keep=true")
    assert re.search(r'<option value="incorrect"', html) is None


def test_paging_walks_every_row_once(served: Viewer, demo_run: Path):
    frame = RunDir(demo_run).read("all")
    seen = []
    for page in range(1, -(-frame.height // 25) + 1):
        _, _, html = get(f"{served.url}samples?size=25&page={page}")
        seen += sample_links(html)
    assert len(seen) == frame.height
    assert set(seen) == {(p, str(s)) for p, s in frame.select(schema.PROMPT_ID, schema.SAMPLE).iter_rows()}


@pytest.mark.parametrize(
    "query",
    [
        "correct=maybe",
        "pass_min=abc",
        "pass_max=nan",
        "tok_min=1.5",
        "page=-1",
        "page=0",
        "size=0",
        "size=100000",
        "sort=;DROP",
        "code_verified=yes",
        "nonsense=1",
        "%3Cscript%3E=1",
        "num_tokens=3",
        "page=99999999999999999999",
    ],
)
def test_malformed_filters_are_ignored_with_a_notice(served: Viewer, query: str):
    status, _, html = get(f"{served.url}samples?{query}")
    assert status == 200
    assert 'class="notice"' in html
    assert "<script>=" not in html


def test_bad_sample_links_are_404_pages_not_errors(served: Viewer):
    for path in (
        "sample?id=nope&s=0",
        "sample?id=x&s=abc",
        "sample",
        "prompt?id=",
        "dup?id=x&s=1",
        "contam?id=x&s=1",
        "plot?name=../run.yaml",
        "static/../../run.py",
        "nowhere",
    ):
        status, headers, _ = get(served.url + path)
        assert status == 404, path
        assert "Content-Security-Policy" in headers


def test_headers_forbid_external_requests_and_framing(served: Viewer):
    for path in ("", "samples", "static/viewer.js", "static/katex/katex.min.css"):
        status, headers, _ = get(served.url + path)
        assert status == 200
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "http" not in csp and "*" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_refuses_writes_and_foreign_hosts(served: Viewer):
    assert get(served.url + "samples", method="POST")[0] == 405
    assert get(served.url, host="evil.example:80")[0] == 421  # DNS rebinding
    assert get(served.url, host=f"localhost:{served.port}")[0] == 200


def test_model_text_is_escaped_in_the_html(hostile_run: Path):
    with Viewer(hostile_run, port=0).start() as viewer:
        frame = RunDir(hostile_run).read("all")
        first = frame.row(0, named=True)
        for path in (
            f"sample?id={first[schema.PROMPT_ID]}&s={first[schema.SAMPLE]}",
            f"prompt?id={first[schema.PROMPT_ID]}",
            "samples?size=200",
            "",
        ):
            status, _, html = get(viewer.url + path)
            assert status == 200, path
            assert SCRIPT not in html and "onerror=" not in html.replace("onerror=&#34;", "")
            assert 'href="javascript:' not in html
        _, _, html = get(viewer.url + f"sample?id={first[schema.PROMPT_ID]}&s={first[schema.SAMPLE]}")
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html


def test_never_writes_to_the_run(demo_run: Path):
    before = snapshot(demo_run)
    with Viewer(demo_run, port=0).start() as viewer:
        _, _, html = get(viewer.url + "samples?size=200")
        for pid, s in set(sample_links(html)):
            assert get(f"{viewer.url}sample?id={pid}&s={s}")[0] == 200
            get(f"{viewer.url}prompt?id={pid}")
            get(f"{viewer.url}dup?id={pid}&s={s}")
            get(f"{viewer.url}contam?id={pid}&s={s}")
        get(viewer.url + "samples?q=eggs")
    assert snapshot(demo_run) == before


def test_eval_directory_shows_scores_and_links_to_samples(demo_run: Path):
    evaldir = demo_run / "eval"
    with Viewer(evaldir, port=0).start() as viewer:
        _, _, html = get(viewer.url)
        assert 'id="scores"' in html and "gsm8k" in html and "pass@1" in html
        assert "/samples?run=gsm8k" in html
        _, _, html = get(viewer.url + "samples?run=gsm8k")
        assert count_on_page(html) == RunDir(evaldir / "gsm8k").read("all").height


def test_not_a_run_and_a_run_being_written(tmp_path: Path, demo_run: Path):
    with pytest.raises(StageError, match="is not a run: it has no data/all/"):
        Viewer(tmp_path, port=0)
    run = tmp_path / "copy"
    shutil.copytree(demo_run / "data", run / "data")
    (run / "data" / ".all.new-x1").mkdir()  # a stage is writing new shards
    with Viewer(run, port=0) as viewer:
        assert viewer.notices == ["a stage is writing this run: showing the last complete shards of data/all"]
    (run / "data" / "all").rename(run / "data" / ".all.old")  # a crash between the swap's two renames
    with Viewer(run, port=0) as viewer:
        assert "showing the previous complete shards" in viewer.notices[0]
        assert viewer.pages.source.size == RunDir(demo_run).read("all").height
    assert not (run / "data" / "all").exists()  # read, never repaired
    shutil.rmtree(run / "data")
    RunDir(run).generations.mkdir()
    RunDir(run).store.write_bytes(b"")  # generation started, nothing exported yet
    (run / "data").mkdir()
    with pytest.raises(StageError, match="generation has not written data/all yet"):
        Viewer(run, port=0)
    shutil.copytree(demo_run / "data" / "all", run / "data" / "all")
    later = max(p.stat().st_mtime for p in (run / "data" / "all").glob("*.parquet")) + 60
    os.utime(RunDir(run).store, (later, later))  # samples arrived after the last export
    with Viewer(run, port=0) as viewer:
        assert viewer.notices == [
            "generations/ is newer than data/all (a stage may still be running): showing the last complete shards"
        ]


def test_a_cut_shard_is_skipped_and_named(tmp_path: Path, demo_run: Path):
    frame = RunDir(demo_run).read("all")
    run = RunDir(tmp_path / "run")
    run.write_rows(frame, "all", shard_bytes=1, row_group_bytes=20_000)
    shards = sorted(run.config_dir("all").glob("*.parquet"))
    assert len(shards) > 2
    shards[1].write_bytes(shards[1].read_bytes()[:100])
    with Viewer(run.root, port=0) as viewer:
        assert viewer.notices == [f"{shards[1].name} is unreadable (ArrowInvalid); its rows are not shown"]
        assert 0 < viewer.pages.source.size < frame.height


def test_port_in_use_is_one_line(demo_run: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use: pass --port 0"):
            Viewer(demo_run, port=port)


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "distill.cli", "view", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_prints_the_url_and_serves(demo_run: Path):
    process = _cli(str(demo_run), "--port", "0")
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert get(url)[0] == 200
        process.send_signal(signal.SIGINT)  # Ctrl-C stops the server cleanly
        assert process.wait(timeout=30) == 0
        assert "distill view: stopped" in process.stderr.read()
    finally:
        process.kill()
        process.wait(timeout=30)


def test_cli_warns_off_loopback_and_fails_in_one_line(tmp_path: Path, demo_run: Path):
    process = _cli(str(demo_run), "--port", "0", "--host", "0.0.0.0")
    try:
        assert process.stderr.readline().startswith("warning: listening on 0.0.0.0: anyone who can reach")
    finally:
        process.terminate()
        process.wait(timeout=30)
    for args, message in (([str(tmp_path)], "is not a run"), ([str(tmp_path / "nope")], "no such folder")):
        done = _cli(*args, "--port", "0")
        _, err = done.communicate(timeout=60)
        assert done.returncode == 1
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_evidence_pages_on_the_demo_run(served: Viewer, demo_run: Path):
    frame = RunDir(demo_run).read("all")
    dups = frame.filter(pl.col(schema.DUP_OF).is_not_null())
    contaminated = frame.filter(pl.col(schema.CONTAMINATED_BY).is_not_null())
    assert dups.height and contaminated.height  # the demo's teacher repeats itself and knows GSM8K / MATH-500
    for row in dups.iter_rows(named=True):
        status, _, html = get(f"{served.url}dup?id={row[schema.PROMPT_ID]}&s={row[schema.SAMPLE]}")
        assert status == 200 and html.count("<mark>") >= 2  # shared spans on both sides
    for row in contaminated.iter_rows(named=True):
        status, _, html = get(f"{served.url}contam?id={row[schema.PROMPT_ID]}&s={row[schema.SAMPLE]}")
        assert status == 200
        assert "cannot be shown" not in html  # the benchmark item is read from the file the filter used
        method = row[schema.CONTAMINATION_METHOD]
        assert f"found by the <strong>{method}</strong> check" in html
        for span in (row[schema.CONTAMINATION_SPANS] or "").split(" | "):
            assert html_escape(span.strip()) in html  # the filter's own shared spans
        if method in ("exact", "ngram"):  # word-for-word copies: shared runs marked on both sides
            assert html.count("<mark>") >= 2


def test_sorting_pages_through_the_filtered_rows(served: Viewer, demo_run: Path):
    frame = RunDir(demo_run).read("all").filter(pl.col(schema.KEEP))
    expected = frame.sort(schema.COMPLETION_TOKENS, descending=True, maintain_order=True)
    shown = []
    for page in (1, 2):
        _, _, html = get(f"{served.url}samples?keep=true&sort=-tokens&size=25&page={page}")
        shown += [(p, int(s)) for p, s in sample_links(html)]
    assert shown == list(expected.select(schema.PROMPT_ID, schema.SAMPLE).head(50).iter_rows())


def test_eval_directory_still_running_and_unsolved_prompts(tmp_path: Path, demo_run: Path):
    evaldir = tmp_path / "eval"
    shutil.copytree(demo_run / "eval" / "gsm8k", evaldir / "gsm8k")  # no results.json yet
    with Viewer(evaldir, port=0).start() as viewer:
        assert viewer.notices == ["results.json is not written yet (the evaluation may still be running)"]
        _, _, html = get(viewer.url + "?run=gsm8k")
        frame = RunDir(evaldir / "gsm8k").read("all").filter(pl.col(schema.PASS_RATE) == 0)
        assert f"{frame[schema.PROMPT_ID].n_unique()} prompts never solved ({frame.height} samples)" in html
        assert count_on_page(get(viewer.url + "samples?run=gsm8k&pass_max=0")[2]) == frame.height


def test_a_sample_opened_from_a_list_steps_through_it(served: Viewer, demo_run: Path):
    frame = RunDir(demo_run).read("all").filter(pl.col(schema.REJECT_REASON) == "incorrect")
    expected = frame.sort(schema.COMPLETION_TOKENS, maintain_order=True)
    keys = [(p, str(s)) for p, s in expected.select(schema.PROMPT_ID, schema.SAMPLE).iter_rows()]
    _, _, html = get(f"{served.url}samples?reject_reason=incorrect&sort=tokens&size=10&page=2")
    first = sample_links(html)[0]
    assert first == keys[10]
    link = re.search(r'href="(/sample\?[^"]*)"', html).group(1).replace("&amp;", "&")
    walked = [first]
    for _ in range(3):
        _, _, page = get(served.url + link.lstrip("/"))
        assert f'id="rank">{len(walked) + 10} of {len(keys)}<' in page
        link = re.search(r'rel="next" href="([^"]*)"', page).group(1).replace("&amp;", "&")
        walked.append(tuple(re.search(r"id=(\w+)&s=(\d+)$", link).groups()))
    assert walked == keys[10:14]
    assert (
        'id="back-to-list" href="/samples?reject_reason=incorrect&amp;sort=tokens&amp;size=10&amp;page=2"'
        in page
    )


def test_odd_column_types_never_break_a_page(tmp_path: Path):
    frame = pl.DataFrame(
        {
            schema.PROMPT_ID: ["a", "a", "b"],
            schema.SAMPLE: [0, 1, 0],
            schema.PROMPT: ["p1", "p1", None],
            schema.REASONING: [None, "r", "r"],
            schema.ANSWER_TEXT: ["$x$", None, "y"],
            schema.SOURCE: pl.Series(["s", None, "t"], dtype=pl.Categorical),
            schema.CODE_VERIFIED: pl.Series([None, None, None], dtype=pl.Null),
            schema.CORRECT: [True, None, False],
            schema.KEEP: pl.Series([None, None, None], dtype=pl.Null),
            schema.PASS_RATE: pl.Series([None, None, None], dtype=pl.Float64),
            schema.CODE_RESULTS: ['{"tests": "not a list"}', "not json", None],
            schema.DUP_OF: ["b/0", "gone/7", None],
        }
    )
    run = RunDir(tmp_path / "odd")
    run.write_rows(frame, "all")
    with Viewer(run.root, port=0).start() as viewer:
        for path in (
            "",
            "samples",
            "samples?source=s&code_verified=null&correct=true&sort=pass_rate&pass_max=1",
            "samples?code_verified=true&source=(none)",
            "sample?id=a&s=0",
            "sample?id=a&s=1",
            "sample?id=b&s=0",
            "prompt?id=a",
            "dup?id=a&s=0",
        ):
            assert get(viewer.url + path)[0] == 200, path
        assert get(viewer.url + "dup?id=a&s=1")[0] == 404  # its dup_of names a sample that is not there
