"""Join shard runs (`distill generate --shard I/N`) into one run, by (prompt_id, sample).

The result is a whole run (store, prompts, data/all, run.yaml, stats), so later stages and a
`distill generate` into it behave as if it had been generated in one go. Shards must share their
generation settings; where two shards hold the same sample, a success wins over an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distill.errors import ConfigError, StageError
from distill.run import RunDir


@dataclass
class MergeReport:
    out: Path
    runs: int
    samples: int
    error_rows: int
    files: list[Path]

    def summary(self) -> str:
        return (
            f"merge: {self.runs} runs → {self.out}: {self.samples:,} samples "
            f"({self.error_rows:,} with errors)"
        )


def merge(runs: Sequence[RunDir], out: RunDir) -> MergeReport:
    """Merge the generation stores of `runs` into `out` and export its data/all."""

    from distill.generation.export import export
    from distill.generation.store import Store

    if not runs:
        raise ConfigError("merge needs at least one RUN")
    _check_runs(runs, out)
    fingerprints = {}
    for run in runs:
        if not run.store.exists():
            raise StageError(f"{run.root} has no generations store: run `distill generate` into it first")
        with Store(run.generations) as store:
            fingerprints[run.root] = store.recorded_settings()
    first = next(iter(fingerprints.values()))
    for root, meta in fingerprints.items():
        if meta.get("fingerprint") != first.get("fingerprint"):
            raise ConfigError(
                f"{root} was generated with other settings than {runs[0].root}; "
                "merge only shards of one generation"
            )
    with out.ensure().writing("merge"), Store(out.generations) as target:
        target.check_settings(first.get("fingerprint", ""), first.get("settings", {}), allow_change=False)
        for run in runs:
            with Store(run.generations) as source:
                target.add_prompts(source.prompts())
                for batch in source.iter_samples(statuses=("ok", "error", "dropped")):
                    target.write(batch)
        files = export(target, out)
        counts = target.counts()
    if runs[0].run_yaml.exists() and not out.run_yaml.exists():
        out.write_settings(runs[0].read_settings())
    stats = runs[0].read_json(runs[0].stats).get("generate", {})
    samples = sum(counts.values()) - counts.get("dropped", 0)
    out.update_stats(
        "generate",
        {
            **stats,
            "samples": samples,
            "errors": counts.get("error", 0),
            "merged_from": [str(r.root) for r in runs],
        },
    )
    return MergeReport(out.root, len(runs), samples, counts.get("error", 0), files)


def _check_runs(runs: Sequence[RunDir], out: RunDir) -> None:
    """Each run once, --out none of them, and shards of one split (I/N with one N, no I twice)."""
    import logging

    from distill.generation.inputs import parse_shard

    seen: dict[Path, Path] = {}
    for run in runs:
        key = run.root.resolve()
        if key in seen:
            raise ConfigError(f"{run.root} is given twice: give each shard once")
        seen[key] = run.root
    if out.root.resolve() in seen:
        raise ConfigError(f"--out {out.root} is one of the runs to merge: merge into a new folder")
    shards: dict[tuple[int, int], Path] = {}
    for run in runs:
        shard = parse_shard(_shard_of(run))
        if shard is None:
            continue
        if shard in shards:
            raise ConfigError(f"{run.root} and {shards[shard]} are both shard {shard[0]}/{shard[1]}")
        shards[shard] = run.root
    totals = {n for _, n in shards}
    if len(totals) > 1:
        raise ConfigError(
            f"the runs split the prompts in different ways (--shard …/{', …/'.join(map(str, sorted(totals)))})"
        )
    if totals:
        total = totals.pop()
        missing = sorted(set(range(total)) - {i for i, _ in shards})
        if missing:
            logging.getLogger(__name__).warning(
                "merging %d of %d shards; missing: %s",
                len(shards),
                total,
                ", ".join(f"{i}/{total}" for i in missing),
            )


def _shard_of(run: RunDir) -> str | None:
    import yaml

    if not run.run_yaml.exists():
        return None
    data = yaml.safe_load(run.run_yaml.read_text(encoding="utf-8")) or {}
    shard = (data.get("generate") or {}).get("shard") if isinstance(data, dict) else None
    return str(shard) if shard else None
