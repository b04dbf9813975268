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
    out.ensure()
    with Store(out.generations) as target:
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
