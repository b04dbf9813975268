"""The generic LLM judge against a real local server playing the judge."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest

from distill.errors import ConfigError, TeacherError
from distill.generation.config import Prices
from distill.judge import JudgeConfig, JudgePrompt, JudgeRequest, judge, parse_verdict, preflight
from distill.testing.local_server import Faults, Reply

PROMPT = JudgePrompt(
    name="same-value",
    version=1,
    fields=("left", "right"),
    template="Are these the same value?\nLEFT: {left}\nRIGHT: {right}\nEnd with `Judgement: yes` or `Judgement: no`.",
)


def equality_judge(messages: list[dict], params: dict, index: int) -> Reply:
    """A judge that compares LEFT and RIGHT after removing spaces, and explains itself."""
    text = messages[-1]["content"]
    left = re.search(r"LEFT: (.*)", text).group(1).replace(" ", "")
    right = re.search(r"RIGHT: (.*)", text).group(1).replace(" ", "")
    same = left == right
    return Reply(
        content=f"Comparing {left} with {right}: they are {'equal' if same else 'different'}.\n"
        f"**Judgement**: {'Yes' if same else 'No'}",
        reasoning="Let me compare the two values.",
    )


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def _requests() -> list[JudgeRequest]:
    pairs = [("1 + 1", "1+1"), ("2", "3"), ("x^2", "x ^ 2"), ("a", "b"), ("1 + 1", "1+1")]
    return [JudgeRequest(f"row-{i}", {"left": a, "right": b}) for i, (a, b) in enumerate(pairs)]


def test_verdicts_per_row_resumed_and_costed(make_teacher_server, tmp_path: Path) -> None:
    server = make_teacher_server(equality_judge, model="judge-1")
    cfg = JudgeConfig(base_url=server.base_url, prices=Prices(input_per_million=1.0, output_per_million=2.0))
    results, report = judge(cfg, PROMPT, _requests(), tmp_path / "judge")

    assert [r.key for r in results] == [f"row-{i}" for i in range(5)]
    assert [r.verdict for r in results] == [True, False, True, False, True]
    assert all(r.model == "judge-1" for r in results)
    assert "they are different" in results[1].reason
    # the duplicate question is asked once; the fixed prompt is what the judge saw
    assert server.request_count == 4 and report.sent == 4
    sent = server.requests[0]
    assert sent["temperature"] == 0.0 and sent["model"] == "judge-1"
    assert "LEFT: 1 + 1\nRIGHT: 1+1" in sent["messages"][-1]["content"]
    assert (report.yes, report.no, report.no_verdict, report.errors) == (3, 2, 0, 0)
    assert report.completion_tokens > 0
    expected = (report.prompt_tokens * 1.0 + report.completion_tokens * 2.0) / 1e6
    assert report.cost_usd == pytest.approx(expected)

    # a rerun reuses every stored verdict and sends nothing
    again, report2 = judge(cfg, PROMPT, _requests(), tmp_path / "judge")
    assert server.request_count == 4 and report2.sent == 0 and report2.reused == 4
    assert [r.verdict for r in again] == [r.verdict for r in results]

    # a new prompt version is a new question
    bumped = JudgePrompt(PROMPT.name, 2, PROMPT.template, PROMPT.fields)
    judge(cfg, bumped, _requests()[:1], tmp_path / "judge")
    assert server.request_count == 5


def test_endpoint_down_stops_before_sending(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = JudgeConfig(base_url=f"http://127.0.0.1:{port}/v1", connect_timeout_s=2)
    with pytest.raises(TeacherError) as e:
        judge(cfg, PROMPT, _requests(), tmp_path / "judge")
    message = str(e.value)
    assert f"judge endpoint http://127.0.0.1:{port}/v1" in message and "\n" not in message
    assert not (tmp_path / "judge").exists()  # nothing was stored, nothing was sent


def test_preflight_names_the_model_or_refuses_an_unknown_one(make_teacher_server) -> None:
    server = make_teacher_server(equality_judge, model="judge-1")
    assert preflight(JudgeConfig(base_url=server.base_url)) == "judge-1"
    with pytest.raises(TeacherError, match="does not serve model 'gpt-x'"):
        preflight(JudgeConfig(base_url=server.base_url, model="gpt-x"))
    assert server.request_count == 0  # only /models was asked


def test_missing_key_variable_is_a_config_error(make_teacher_server, monkeypatch) -> None:
    server = make_teacher_server(equality_judge)
    monkeypatch.delenv("JUDGE_KEY_FOR_TEST", raising=False)
    with pytest.raises(ConfigError, match="JUDGE_KEY_FOR_TEST"):
        preflight(JudgeConfig(base_url=server.base_url, api_key_env="JUDGE_KEY_FOR_TEST"))


def test_rate_limits_are_retried_and_failures_rerun(make_teacher_server, tmp_path: Path) -> None:
    flaky = make_teacher_server(
        equality_judge, faults=Faults(schedule={1: "429", 2: "500"}, retry_after_s=2.0)
    )
    sleep = FakeSleep()
    cfg = JudgeConfig(base_url=flaky.base_url, concurrency=1)
    results, report = judge(cfg, PROMPT, _requests(), tmp_path / "a", sleep=sleep)
    assert [r.verdict for r in results] == [True, False, True, False, True]
    assert any(w >= 2.0 for w in sleep.waits)  # Retry-After honoured

    broken = make_teacher_server(equality_judge, faults={"500": 1.0})
    cfg = JudgeConfig(base_url=broken.base_url, max_attempts=2, concurrency=1)
    results, report = judge(cfg, PROMPT, _requests()[:2], tmp_path / "b", sleep=FakeSleep())
    assert [r.verdict for r in results] == [None, None] and report.errors == 2
    assert all(r.error and "judge request failed" in r.reason for r in results)
    healthy = make_teacher_server(equality_judge, model=broken.model)
    cfg = JudgeConfig(base_url=healthy.base_url)
    results, report = judge(cfg, PROMPT, _requests()[:2], tmp_path / "b")
    assert [r.verdict for r in results] == [True, False] and report.sent == 2  # failed rows asked again


def test_budget_stops_sending(make_teacher_server, tmp_path: Path) -> None:
    server = make_teacher_server(equality_judge)
    cfg = JudgeConfig(
        base_url=server.base_url, concurrency=1, budget_usd=1e-9, prices=Prices(output_per_million=1.0)
    )
    results, report = judge(cfg, PROMPT, _requests(), tmp_path / "judge")
    assert report.stopped and "budget" in report.stopped
    assert server.request_count == 1
    assert results[1].verdict is None and "not judged" in results[1].reason


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("The values match.\nJudgement: yes", True),
        ("Judgement: Yes ... wait, no.\nJudgement: No", False),
        ("**Verdict:** Correct", True),
        ("Final answer: \\boxed{\\text{no}}", False),
        ("They are the same expression.\n\nYES", True),
        ("Verdict: incorrect", False),
        ("I think they are equal.", None),
        ("", None),
        ("Judgement: maybe", None),
    ],
)
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    got, reason = parse_verdict(reply)
    assert got is verdict
    assert reason


def test_render_clips_long_fields_and_names_missing_ones() -> None:
    text = PROMPT.render({"left": "a" * 50 + "END", "right": "b"}, max_field_chars=20)
    assert "characters cut" in text and "END" in text
    with pytest.raises(ConfigError, match="missing field"):
        PROMPT.render({"left": "a"})
