"""DeepSpeed Ulysses sequence parallelism under TRL: what the adapter may shard, its epochs, the loss weights.

Each piece wraps one object of TRL/accelerate/DeepSpeed at one seam (the collator, the dataloader
adapter, `get_batch_samples`/`compute_loss`), so `build_trainer` stays a list of those wrappings.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["FreshEpochs", "UlyssesBatch", "UlyssesTokenMean"]


class UlyssesBatch:
    """The collator's batch reduced to what DeepSpeed's Ulysses adapter shards along the sequence.

    The adapter splits every tensor on dim 1, so the padding-free collator's 1-D boundaries
    (`cu_seq_lens_*`) cannot pass; attention finds the boundaries from the gathered position_ids.
    """

    KEYS = ("input_ids", "labels", "position_ids")

    def __init__(self, collator: Callable[[list[Any]], dict[str, Any]]):
        self.collator = collator

    def __call__(self, examples: list[Any]) -> dict[str, Any]:
        batch = self.collator(examples)
        return {k: batch[k] for k in self.KEYS if k in batch}


class FreshEpochs:
    """DeepSpeed's Ulysses dataloader adapter, restarted at each epoch.

    The adapter returns itself from `iter()` and rewinds only after a `next()` that fails, but
    Trainer stops after `len()` micro-batches: every later epoch would begin on the spent loader
    and lose its first optimizer step (or end training when an epoch is one step). Everything
    else (`set_epoch`, samplers) is the wrapped dataloader's.
    """

    def __init__(self, adapter: Any):
        self.adapter = adapter

    def __len__(self) -> int:
        return len(self.adapter)

    def __iter__(self) -> Any:
        self.adapter.micro_batches.clear()
        self.adapter.iter = iter(self.adapter.dl)
        return self.adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapter.dl, name)


class UlyssesTokenMean:
    """Under Ulysses, weigh each micro-batch's loss by its share of the step's trained tokens.

    transformers reduces the loss over the SP ranks of one micro-batch, then Trainer averages the
    micro-batches of a step, so a short pack would weigh as much as a full one. Without SP the loss
    is the token mean of the whole step over every GPU; this gives SP runs the same objective.
    """

    def __init__(self, trainer: Any, *, data_parallel: int, sp_group: Any = None):
        self.data_parallel, self.sp_group = data_parallel, sp_group  # None: DeepSpeed's, once it exists
        self.weights: deque[float] = deque()
        self._get_batch_samples, self._compute_loss = trainer.get_batch_samples, trainer.compute_loss
        trainer.get_batch_samples, trainer.compute_loss = self.get_batch_samples, self.compute_loss

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> tuple[list, Any]:
        """Trainer's prefetch of one optimizer step's micro-batches, plus each one's loss weight."""
        import torch
        import torch.distributed as dist

        from distill.training.data import IGNORE

        batches, items = self._get_batch_samples(epoch_iterator, num_batches, device)
        if batches:
            if self.sp_group is None:
                from deepspeed.utils import groups

                self.sp_group = groups._get_sequence_parallel_group()
            mine = torch.stack([(b["shift_labels"] != IGNORE).sum() for b in batches]).to(device)
            per_batch = mine.clone()  # tokens of each micro-batch over its SP group
            dist.all_reduce(per_batch, group=self.sp_group)
            step = mine.sum()  # tokens of the step over every GPU
            dist.all_reduce(step)
            # Trainer divides by len(batches); DeepSpeed averages over the data-parallel groups.
            scale = len(batches) * self.data_parallel / step.clamp(min=1)
            self.weights = deque((per_batch * scale).tolist())
        return batches, items

    def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        loss = self._compute_loss(model, inputs, *args, **kwargs)
        if model.training and self.weights:
            return loss * self.weights.popleft()
        return loss
