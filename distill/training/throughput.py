"""Tokens/s/GPU, MFU and peak memory of a training run, counted inside the training process.

Real (non-pad) tokens and Σ doc² are counted per micro-batch from the batch itself (packed rows carry
`cu_seq_lens_q`), so MFU = Σ_docs (6·N·s + 6·L·d·s²) / (time · peak) counts no padding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from distill.training.estimate import ModelShape

log = logging.getLogger(__name__)


class ThroughputMeter:
    """Counts real tokens and Σ doc² per micro-batch (padding excluded) and times optimizer steps."""

    def __init__(
        self,
        shape: ModelShape,
        peak_tflops: float,
        *,
        params: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.shape, self.peak, self.clock = shape, peak_tflops * 1e12, clock
        self.params = params or shape.params
        self.tokens = 0
        self.sumsq = 0
        self.marks: list[tuple[float, int, int]] = []  # (time, tokens, sumsq) at each step end

    def add(self, inputs: dict[str, Any]) -> None:
        tokens, sumsq = token_counts(inputs)
        self.tokens += tokens
        self.sumsq += sumsq

    def flops(self, tokens: int, sumsq: int) -> float:
        return 6 * self.params * tokens + 6 * self.shape.layers * self.shape.hidden * sumsq

    def steady_rate(self, skip: int = 1) -> tuple[float | None, float | None]:
        """(tokens/s/GPU, MFU) over the steps after the first `skip` (compilation, allocator warm-up)."""
        marks = self.marks[skip:] if len(self.marks) > skip + 1 else self.marks
        if len(marks) < 2:
            return None, None
        (t0, k0, s0), (t1, k1, s1) = marks[0], marks[-1]
        dt = t1 - t0
        if dt <= 0:
            return None, None
        return (k1 - k0) / dt, self.flops(k1 - k0, s1 - s0) / dt / self.peak

    def callback(self) -> Any:
        from transformers import TrainerCallback

        meter = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001, ANN202
                meter.marks = [(meter.clock(), meter.tokens, meter.sumsq)]

            def on_step_end(self, args, state, control, **kw):  # noqa: ANN001, ANN202
                _sync()
                meter.marks.append((meter.clock(), meter.tokens, meter.sumsq))

            def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001, ANN202
                if len(meter.marks) >= 2 and logs is not None and "loss" in logs:
                    (t0, k0, s0) = meter.marks[-1 - min(args.logging_steps, len(meter.marks) - 1)]
                    (t1, k1, s1) = meter.marks[-1]
                    if t1 > t0:
                        mem = peak_gib()
                        log.info(
                            "step %d loss %.4f | %.0f tokens/s/GPU | MFU %.1f%%%s",
                            state.global_step,
                            logs["loss"],
                            (k1 - k0) / (t1 - t0),
                            100 * meter.flops(k1 - k0, s1 - s0) / (t1 - t0) / meter.peak,
                            f" | peak {mem:.1f} GiB" if mem else "",
                        )

        return _Callback()


def token_counts(inputs: dict[str, Any]) -> tuple[int, int]:
    """Real tokens and Σ document² of one micro-batch, padding excluded."""
    import torch

    cu = inputs.get("cu_seq_lens_q")
    if cu is not None:
        lens = (cu[1:] - cu[:-1]).long()
    elif "attention_mask" in inputs:
        lens = inputs["attention_mask"].sum(-1).long()
    elif "position_ids" in inputs:
        # A slice of packed rows (Ulysses shards them): a document of s tokens has positions 0…s-1
        # and Σ (2p + 1) = s², so each token adds its share of Σ s² wherever the cut falls.
        pos = inputs["position_ids"].long()
        return pos.numel(), int((2 * pos + 1).sum())
    else:
        lens = torch.tensor([inputs["input_ids"].numel()])
    tokens, sumsq = torch.stack([lens.sum(), (lens * lens).sum()]).tolist()
    return tokens, sumsq


def count_batches(trainer: Any, meter: ThroughputMeter) -> None:
    """Count every micro-batch in the training process (collators may run in dataloader workers)."""
    inner = trainer.compute_loss

    def compute_loss(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if model.training:
            meter.add(inputs)
        return inner(model, inputs, *args, **kwargs)

    trainer.compute_loss = compute_loss


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
