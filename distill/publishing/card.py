"""Data card: RUN/README.md with Hub metadata, stats and plots, rendered from a template in data_cards/.

The YAML header declares two configs, `all` (every sample, with verdict and filter columns) and
`sft` (kept rows, TRL-ready), so `load_dataset(RUN)` / `load_dataset(RUN, "sft")` work on the folder
and on the Hub alike. The body reports the teacher and its settings (from run.yaml, secrets
stripped), prompt sources, verification, filtering, decontamination, token lengths, cost, and how
to load and fine-tune on the data. A stage that did not run is named as such, never left blank.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from distill import schema
from distill.errors import ConfigError, StageError
from distill.publishing.config import CardConfig
from distill.resources import card_templates_dir
from distill.run import RunDir, writes_run

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "dataset_card.md.j2"
REPO_ID_PLACEHOLDER = "your-org/your-dataset"  # push() puts the real repo id in the uploaded copy
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)
COLUMN_DOCS = {
    schema.PROMPT_ID: "stable hash of the rendered prompt",
    schema.SAMPLE: "sample index for the prompt (0..n-1)",
    schema.PROMPT: "the rendered user turn sent to the teacher",
    schema.MESSAGES: "chat turns: the user prompt, then the assistant turn `<think>\\n…\\n</think>\\n\\n{answer}`",
    schema.REASONING: "the teacher's reasoning (inside `<think>`)",
    schema.ANSWER_TEXT: "the teacher's final answer (after `</think>`)",
    schema.COMPLETE: "the reasoning was closed (`</think>` seen)",
    schema.TEACHER: "teacher model id",
    schema.FINISH_REASON: "why generation stopped (`stop`, `length`, …)",
    schema.PROMPT_TOKENS: "prompt tokens reported by the teacher",
    schema.COMPLETION_TOKENS: "completion tokens reported by the teacher",
    schema.LATENCY_S: "request latency in seconds",
    schema.ATTEMPTS: "requests needed (retries included)",
    schema.ERROR: "request error; null when the request succeeded",
    schema.MATH_VERIFIED: "final answer equals the gold answer (math-verify); null when not applicable",
    schema.CODE_VERIFIED: "program passes the tests in a sandbox; null when not applicable",
    schema.FORMAT_OK: "the trace is well formed (one closed think block, an answer after it)",
    schema.VERIFY_DETAIL: "why a verifier said false or null",
    schema.VERDICT_REASON: "how the math verdict was reached: parsed, no_answer, partial_parse, gold_unparsed, timeout, judge",
    schema.JUDGE_VERDICT: "the LLM judge's verdict where the rules gave none (verify.judge); null otherwise",
    schema.JUDGE_MODEL: "the judge model behind judge_verdict",
    schema.JUDGE_REASON: "the judge's explanation, or why it gave no verdict",
    schema.CORRECT: "the verdict used for selection (math or code)",
    schema.PASS_RATE: "share of the prompt's samples verified correct",
    schema.KEEP: "selected for the sft config",
    schema.REJECT_REASON: "first filter rule that rejected the sample",
    schema.DUP_OF: "the sample this one duplicates",
    schema.CONTAMINATED_BY: "benchmark item (benchmark:id) the prompt, reasoning or answer overlaps with",
    schema.CONTAMINATION_METHOD: "how the overlap was found: exact, ngram, semantic (reworded) or judge",
    schema.CONTAMINATION_SCORE: "strength of the evidence: 1.0 exact, n-gram coverage, else TF-IDF cosine",
    schema.CONTAMINATION_SPANS: "the longest runs of words shared with the benchmark item",
    schema.LANGUAGE: "detected language of the trace",
    schema.TEMPERATURE: "sampling temperature of the request",
    schema.TOP_P: "nucleus sampling threshold of the request",
    schema.MAX_TOKENS: "completion token limit of the request",
    schema.SEED: "sampling seed of the request",
    schema.NUM_TOKENS: "tokens in the whole conversation (method stated in the card)",
    schema.SOURCE: "where the prompt came from",
}


@writes_run("card")
def write_card(cfg: CardConfig, run: RunDir, *, force: bool = False) -> Path:
    """Write RUN/README.md (and RUN/plots/*.png), building `data/sft` first when it is missing or stale.

    A README.md that `distill card` did not write as it is now (edited by hand, or a user's own file)
    is never overwritten silently: it is an error unless `force`.
    """
    from distill.publishing.card_plots import draw_plots
    from distill.publishing.card_stats import collect
    from distill.publishing.dataset import build_dataset, is_dataset_current

    if not force:
        check_card_untouched(run)
    template = _load_template(cfg.template)
    if not is_dataset_current(run, cfg.tokenizer):
        build_dataset(run, cfg)
    stats = collect(run, example_chars=cfg.example_chars, view=cfg.view)
    plots = {
        name: path.relative_to(run.root).as_posix()
        for name, path in (draw_plots(stats, run) if cfg.plots else {}).items()
    }
    metadata = card_metadata(cfg, run, stats.rows_all, stats.rows_sft)
    text = template.render(
        metadata_yaml=_dump_yaml(metadata),
        meta=metadata,
        cfg=cfg,
        s=stats,
        plots=plots,
        title=metadata["pretty_name"],
        repo_id=REPO_ID_PLACEHOLDER,
        columns=_columns(run),
        run_name=run.root.resolve().name,
        version=_version(),
        schema_version=schema.SCHEMA_VERSION,
    )
    validate_card(text)
    run.write_text(run.card, text)
    run.record_written(run.card)  # survives `generate` forgetting the card stage when samples are added
    run.mark_done("card", cfg.fingerprint(), inputs=card_inputs(run))
    log.info("wrote %s", run.card)
    return run.card


def card_metadata(cfg: CardConfig, run: RunDir, rows_all: int, rows_sft: int) -> dict[str, Any]:
    """The card's YAML header: what the Hub reads (configs, license, size, tags, …)."""
    configs: list[dict[str, Any]] = [
        {"config_name": "all", "data_files": [{"split": "train", "path": "data/all/train-*.parquet"}]}
    ]
    if rows_sft:  # a config with no rows cannot be loaded, so an empty sft is left out (the card says so)
        configs.append(
            {"config_name": "sft", "data_files": [{"split": "train", "path": "data/sft/train-*.parquet"}]}
        )
    default = cfg.default_config if any(c["config_name"] == cfg.default_config for c in configs) else "all"
    for c in configs:
        if c["config_name"] == default:
            c["default"] = True
    configs.sort(key=lambda c: not c.get("default", False))
    return {
        "pretty_name": cfg.pretty_name or run.root.resolve().name,
        "license": cfg.license,
        "language": list(cfg.language),
        "task_categories": list(cfg.task_categories),
        "size_categories": [size_category(rows_all)],
        "tags": list(dict.fromkeys([*cfg.tags, "distill"])),
        "configs": configs,
        "distill_run_id": run.run_id,
    }


def size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1B"


def validate_card(text: str) -> None:
    """Check the card the way the Hub reads it (offline): parsable metadata with loadable configs."""
    from huggingface_hub import DatasetCard

    try:
        card = DatasetCard(text)
    except ValueError as e:
        raise StageError(f"the rendered data card is invalid: {str(e).splitlines()[0]}") from e
    data = card.data.to_dict()
    for key in ("license", "configs", "size_categories", "task_categories"):
        if not data.get(key):
            raise StageError(f"the rendered data card has no `{key}` in its metadata (check the template)")
    for c in data["configs"]:
        if not c.get("config_name") or not c.get("data_files"):
            raise StageError(f"the data card's config {c!r} needs config_name and data_files")


def card_inputs(run: RunDir) -> str:
    """A hash of what the card describes (both configs, stats.json, run.yaml); push compares it."""
    from distill.publishing.dataset import data_fingerprint

    digest = hashlib.sha256(data_fingerprint(run, "all", "sft").encode())
    for path in (run.stats, run.run_yaml):
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:16]


def check_card_untouched(run: RunDir) -> None:
    """Raise StageError when RUN/README.md exists but is not the card `distill card` last wrote."""
    if run.may_replace(run.card):  # missing, or exactly what `distill card` last wrote
        return
    if run.was_written(run.card):
        raise StageError(
            f"{run.card} was edited by hand since `distill card` wrote it: keep your edits in card.description "
            f"or a card.template, or pass --force to overwrite them"
        )
    if not run.stage_record("card"):  # a card from before the record existed passes while its stage is done
        raise StageError(
            f"{run.card} exists and was not written by `distill card`: move it away, or pass --force to replace it"
        )


def is_card_current(run: RunDir) -> bool:
    record = run.stage_record("card") or {}
    return run.card.exists() and bool(record) and record.get("inputs") == card_inputs(run)


def _load_template(path: Path | None):  # noqa: ANN202 - jinja2 is imported lazily
    import jinja2

    folder, name = (path.parent, path.name) if path else (card_templates_dir(), DEFAULT_TEMPLATE)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(
        num=_num,
        pct=_pct,
        usd=lambda v: f"${v:,.2f}",
        yaml=_dump_yaml,
        fence=_fence,
        counts=lambda d: ", ".join(f"`{k}` {v:,}" for k, v in d.items()),
    )
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as e:
        raise ConfigError(f"card.template: {folder / name} not found") from e
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"card.template: {folder / name}, line {e.lineno}: {e.message}") from e


def _dump_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()


def _columns(run: RunDir) -> dict[str, list[dict[str, str]]]:
    import polars as pl

    out = {}
    for config in ("all", "sft"):
        if run.has_rows(config):
            names = pl.read_parquet_schema(run.shard_files(config)[0])
            out[config] = [
                {"name": n, "dtype": str(t), "doc": COLUMN_DOCS.get(n, "passed through from the prompts")}
                for n, t in names.items()
            ]
    return out


def _fence(text: str) -> str:
    """`text` in a code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _version() -> str:
    from distill import __version__

    return __version__
