"""What an SFT run (or a dry run) did: the plan, the estimate and the training numbers (sft_report.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.training.estimate import Estimate
from distill.training.template import TemplateCheck

__all__ = ["SFTReport"]


@dataclass
class SFTReport:
    """What a run (or a dry run) did; the CLI prints it."""

    output_dir: Path
    dry_run: bool
    batch_plan: str
    template: TemplateCheck
    example: str
    estimate: Estimate
    rope: str | None
    attention: str
    loss: str
    gradient_checkpointing: bool
    steps: int = 0
    final_loss: float | None = None
    losses: list[float] = field(default_factory=list)
    tokens_per_s_per_gpu: float | None = None
    mfu: float | None = None
    peak_memory_gib: float | None = None
    train_seconds: float | None = None
    resumed_from: str | None = None
    pushed_to: str | None = None
    launched: list[str] | None = None
    accelerate_config: Path | None = None  # several GPUs: the config `accelerate launch` gets

    def summary(self) -> str:
        if self.dry_run:
            return f"dry run: {self.estimate.steps:,} steps planned → {self.output_dir}"
        loss = (
            f", loss {self.losses[0]:.3f} → {self.final_loss:.3f}" if self.losses and self.final_loss else ""
        )
        return f"{self.steps} steps{loss} → {self.output_dir}"

    def to_stats(self) -> dict[str, Any]:
        """What sft_report.json holds."""
        from dataclasses import asdict

        data = asdict(self)
        data["estimate"] = self.estimate.as_dict()
        return data

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> SFTReport:
        """The report from sft_report.json."""
        from distill.training.estimate import MemoryEstimate

        data = dict(stats)
        estimate = dict(data.pop("estimate"))
        memory = {k: v for k, v in estimate.pop("memory").items() if k != "total_gib"}
        return cls(
            **{
                **data,
                "output_dir": Path(data["output_dir"]),
                "template": TemplateCheck(**data["template"]),
                "estimate": Estimate(**estimate, memory=MemoryEstimate(**memory)),
            }
        )

    def table_rows(self) -> list[tuple[str, str]]:
        e = self.estimate
        rows = [
            ("batch", self.batch_plan),
            (
                "template",
                f"{self.template.name} (eos {self.template.eos_token!r}, pad {self.template.pad_token!r})",
            ),
            (
                "samples",
                f"{e.rows:,} kept, {e.dropped_long:,} dropped (> max_length), {e.truncated:,} truncated",
            ),
            ("tokens", f"{e.tokens:,} ({e.target_tokens:,} trained), longest sample {e.max_sample:,}"),
            ("steps", f"{e.steps:,} optimizer steps over {e.packed_rows:,} rows"),
            (
                "model",
                f"{e.params / 1e9:.2f}B parameters; attention {self.attention}; loss {self.loss}; "
                f"checkpointing {'full' if self.gradient_checkpointing else 'off'}",
            ),
            (
                "memory/GPU",
                f"~{e.memory.total_gib:.1f} GiB (states {e.memory.states_gib:.1f}, activations "
                f"{e.memory.activations_gib:.1f}, overhead {e.memory.overhead_gib:.1f})",
            ),
            (
                "GPU-hours",
                f"{e.gpu_hours:,.1f} on {e.gpus} GPU(s) at {e.tokens_per_s_per_gpu:,.0f} tokens/s/GPU "
                f"({e.throughput_source})",
            ),
        ]
        if self.rope:
            rows.append(("rope", self.rope))
        if self.accelerate_config is not None:
            rows.append(
                ("launch", f"accelerate launch --config_file {self.accelerate_config} ({e.gpus} processes)")
            )
        if not self.dry_run:
            rows += [
                ("trained", f"{self.steps} steps, final loss {self.final_loss}"),
                (
                    "speed",
                    f"{self.tokens_per_s_per_gpu or 0:,.0f} tokens/s/GPU, MFU {self.mfu or 0:.1%}, "
                    f"peak {self.peak_memory_gib or 0:.1f} GiB",
                ),
                (
                    "output",
                    str(self.output_dir)
                    + (f" (resumed from {self.resumed_from})" if self.resumed_from else ""),
                ),
            ]
        if self.pushed_to:
            rows.append(("hub", self.pushed_to))
        return rows
