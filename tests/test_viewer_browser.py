"""`distill view` in a real browser: Debian's headless Chromium, driven by Playwright.

One walk through the demo's run as a user would take it (overview → filters → back button → search →
a sample with its math rendered), and one through a run whose model text attacks the page. Every
request the page makes is recorded: none may leave the viewer. Screenshots land in the test's tmp folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import polars as pl
import pytest

from distill import schema
from distill.run import RunDir
from distill.viewer import Viewer
from tests.plugins.viewer import CODE, SCRIPT


class Tab:
    """A browser tab on one viewer, recording every request and every console error."""

    def __init__(self, chromium: object, viewer: Viewer, shots: Path) -> None:
        self.context = chromium.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.viewer, self.shots = viewer, shots
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> None:
        self.page.goto(self.viewer.url + path.lstrip("/"))
        self.page.wait_for_selector("body[data-math=rendered]")  # viewer.js ran, KaTeX pass done

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def count(self) -> int:
        return int(self.page.inner_text("#count strong").replace(",", ""))

    def pwned(self) -> object:
        return self.page.evaluate("window.__pwned")


@pytest.fixture
def tab(chromium: object, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Tab]:
    run = request.getfixturevalue(request.param)
    with Viewer(run, port=0).start() as viewer:
        t = Tab(chromium, viewer, tmp_path)
        yield t
        t.context.close()
        outside = [u for u in t.requests if not u.startswith(viewer.url)]
        assert outside == [], outside  # the page never reaches anything but the viewer
        assert t.errors == []  # no CSP violation, no script error
        assert list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("tab", ["demo_run"], indirect=True)
def test_browse_filter_go_back_and_read_a_sample(tab: Tab, demo_run: Path):
    frame = RunDir(demo_run).read("all")
    page = tab.page
    tab.open("/")
    tab.shot("overview")
    assert "incorrect" in page.inner_text("#rejections")
    widths = page.eval_on_selector_all(".plots img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths)  # the card's plots load

    page.click("header nav >> text=samples")
    page.wait_for_url("**/samples")
    assert tab.count() == frame.height
    page.select_option("select[name=reject_reason]", "incorrect")
    page.wait_for_url(re.compile(r"reject_reason=incorrect"))
    assert "source=" not in page.url and "q=" not in page.url  # only the filters in use
    incorrect = frame.filter(pl.col(schema.REJECT_REASON) == "incorrect")
    assert tab.count() == incorrect.height
    page.select_option("select[name=math_verified]", "false")
    page.wait_for_url(re.compile(r"math_verified=false"))
    assert tab.count() == incorrect.filter(~pl.col(schema.MATH_VERIFIED)).height
    tab.shot("filtered")

    page.go_back()
    page.wait_for_url(re.compile(r"reject_reason=incorrect$"))
    assert tab.count() == incorrect.height
    assert page.input_value("select[name=reject_reason]") == "incorrect"
    page.go_forward()
    page.wait_for_url(re.compile(r"math_verified=false"))

    tab.open("/samples")
    page.fill("input[name=q]", "farmer")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=farmer"))
    text = pl.any_horizontal(
        pl.col(c).str.to_lowercase().str.contains("farmer", literal=True).fill_null(False)
        for c in (schema.PROMPT, schema.REASONING, schema.ANSWER_TEXT)
    )
    tab_count = tab.count()
    assert tab_count == frame.filter(text).height > 1

    second = page.get_attribute("#samples tr:nth-child(3) td:first-child a", "href")
    page.click("#samples tr:nth-child(2) td:first-child a")
    page.wait_for_url("**/sample?**")
    page.wait_for_selector("body[data-math=rendered]")
    pid, sample = re.search(r"id=(\w+)&s=(\d+)", page.url).groups()
    row = frame.filter((pl.col(schema.PROMPT_ID) == pid) & (pl.col(schema.SAMPLE) == int(sample))).row(
        0, named=True
    )
    assert row[schema.PROMPT].splitlines()[0] in page.inner_text("#prompt")
    assert f"{len(row[schema.REASONING]):,} characters" in page.inner_text("#reasoning summary")
    assert page.locator("#answer .katex").count() > 0  # $\boxed{…}$ typeset by the shipped KaTeX
    assert page.locator("#answer .katex-error").count() == 0
    assert page.inner_text("#filters-verdicts").count("\n") >= 3  # keep, reject_reason, language, …
    page.click("#reasoning summary")
    assert page.locator("#reasoning details").get_attribute("open") is None  # collapsed
    tab.shot("sample")
    assert page.inner_text("#rank") == f"1 of {tab_count}"
    page.keyboard.press("j")  # the next sample of the searched list
    page.wait_for_url(re.compile(re.escape(second.split("&id=")[1])))
    assert page.inner_text("#rank") == f"2 of {tab_count}"
    page.keyboard.press("k")
    page.wait_for_url(re.compile(rf"id={pid}&s={sample}$"))
    page.click("#back-to-list")
    page.wait_for_url(re.compile(r"/samples\?q=farmer$"))
    page.go_back()
    page.wait_for_url("**/sample?**")
    page.click("#prompt-link")
    page.wait_for_url("**/prompt?**")
    assert "pass rate" in page.inner_text("#pass-rate")


@pytest.mark.parametrize("tab", ["hostile_run"], indirect=True)
def test_model_text_cannot_run_in_the_page(tab: Tab, hostile_run: Path):
    frame = RunDir(hostile_run).read("all")
    first, second, third = (frame.row(i, named=True) for i in range(3))
    page = tab.page

    tab.open(f"/sample?id={first[schema.PROMPT_ID]}&s={first[schema.SAMPLE]}")
    tab.shot("hostile-sample")
    assert tab.pwned() is None
    assert SCRIPT in page.inner_text("#prompt")  # shown as text
    assert 'onerror="window.__pwned = 2"' in page.inner_text("#reasoning")
    assert page.locator("main img").count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator("#reasoning .katex").count() >= 2  # x^2 + 1/2 = 3 and sqrt(16) = 4, typeset
    code = page.locator("#answer pre.code")
    assert code.inner_text() == CODE.rstrip("\n") or code.inner_text() == CODE
    assert code.locator("span").count() > 3  # highlighted by tokens
    assert page.inner_text("#tests").count("passed") == 1
    assert "<b>test_two</b>" in page.inner_text("#tests")

    for path in (
        "/samples?size=200",
        f"/samples?reject_reason={quote(first[schema.REJECT_REASON])}",
        "/samples?source=" + quote('<img src=x onerror="window.__pwned=9">') + "&%3Cscript%3E=1",
        f"/prompt?id={first[schema.PROMPT_ID]}",
    ):
        tab.open(path)
        assert tab.pwned() is None, path
        assert page.locator("main img").count() == 0, path
        if "source=" in path:
            assert tab.count() == 0  # the hostile value filtered nothing, and was shown as text
            assert '<img src=x onerror="window.__pwned=9">' in page.inner_text("#filters")

    tab.open(f"/dup?id={second[schema.PROMPT_ID]}&s={second[schema.SAMPLE]}")
    tab.shot("duplicate-pair")
    assert tab.pwned() is None
    assert "The shared words repeat here." in page.inner_text("#left mark >> nth=-1")
    assert page.locator("#right mark").count() > 0

    tab.open(f"/contam?id={third[schema.PROMPT_ID]}&s={third[schema.SAMPLE]}")
    tab.shot("contamination")
    assert tab.pwned() is None
    marks = page.locator(".pair .right mark")
    assert marks.count() > 0 and "ducks lay 16 eggs per day" in marks.first.inner_text()
