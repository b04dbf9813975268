"""Pre-flight estimate: tokens, steps, memory per GPU for the chosen sharding, GPU-hours; refuse what cannot fit.

Memory model (per GPU, bytes; P parameters, W ranks that shard, T tokens per micro-batch per GPU):
- states: unsharded bf16 training keeps weights, grads and AdamW's two moments in bf16 (8·P, as
  open-r1's `torch_dtype: bfloat16`); FSDP2 and ZeRO-3 keep fp32 master weights, fp32 grads and fp32
  moments (16·P / W; ZeRO-3 with CPU offload keeps 4·P / W on the GPU) plus one gathered bf16 layer.
- activations (FlashAttention-style kernels, no S² term): per token per layer ≈ 2·(8·d + 3·kv + 3·f)
  bytes without checkpointing (Liger's fused SwiGLU keeps one MLP tensor fewer); with full checkpointing, one bf16 hidden state per layer (2·d) plus one
  layer's full activations during recomputation. The LM head's loss is chunked, so logits add little.
- overhead: 5% + 2 GiB (CUDA context, workspaces, fragmentation).
Calibrated on one H100 (bench/RESULTS.md, section SFT): 1.5B at 16k without checkpointing 46.9 GiB
allocated / 47.9 reserved (model: 50); 7B at 16k with full checkpointing 63.7 / 65.5 (model: 68).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from distill.errors import ConfigError
from distill.training.config import SFTConfig

GIB = 2**30
ASSUMED_MFU = 0.30  # for GPU-hours when no measured throughput is given


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a model config."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    max_positions: int

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        c = config.get_text_config() if hasattr(config, "get_text_config") else config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        return cls(
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            getattr(c, "num_key_value_heads", None) or c.num_attention_heads,
            head_dim,
            c.intermediate_size,
            c.vocab_size,
            bool(getattr(c, "tie_word_embeddings", False)),
            int(getattr(c, "max_position_embeddings", 0) or 0),
        )

    @property
    def params(self) -> int:
        d, hd, f = self.hidden, self.head_dim, self.intermediate
        attn = d * self.heads * hd + 2 * d * self.kv_heads * hd + self.heads * hd * d
        layer = attn + 3 * d * f + 2 * d
        embed = self.vocab * d * (1 if self.tied else 2)
        return self.layers * layer + embed + d

    def activation_bytes_per_token_layer(self) -> int:
        kv = self.kv_heads * self.head_dim
        return 2 * (8 * self.hidden + 3 * kv + 3 * self.intermediate)

    def flops_per_doc(self, length: int) -> float:
        """Model FLOPs of one training pass over one document: 6·N·s + 6·L·d·s² (causal attention)."""
        return 6 * self.params * length + 6 * self.layers * self.hidden * length * length


@dataclass
class MemoryEstimate:
    states_gib: float
    activations_gib: float
    overhead_gib: float
    gradient_checkpointing: bool

    @property
    def total_gib(self) -> float:
        return self.states_gib + self.activations_gib + self.overhead_gib


@dataclass
class Estimate:
    """Everything `distill sft --dry-run` prints."""

    rows: int
    dropped_long: int
    truncated: int
    tokens: int
    target_tokens: int
    max_sample: int
    packed_rows: int
    steps: int
    params: int
    memory: MemoryEstimate
    tokens_per_s_per_gpu: float
    throughput_source: str
    gpu_hours: float
    gpus: int
    fits: bool

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["memory"]["total_gib"] = self.memory.total_gib
        return d


def memory_per_gpu(cfg: SFTConfig, shape: ModelShape, *, checkpointing: bool) -> MemoryEstimate:
    """Memory per GPU (GiB) of one training step under cfg's hardware plan."""
    hw = cfg.hardware
    p = shape.params
    if hw.sharding in ("fsdp2", "zero3"):
        per_param = 4.0 if hw.cpu_offload else 16.0
        layer_params = p / shape.layers
        states = per_param * p / hw.world_size + 2 * 2 * layer_params  # + gathered bf16 layer (+ prefetch)
    else:
        states = (8.0 if cfg.bf16 else 16.0) * p
    tokens = cfg.per_device_batch_size * cfg.max_length / hw.sequence_parallel
    per_layer = shape.activation_bytes_per_token_layer()
    if checkpointing:
        acts = tokens * (shape.layers * 2 * shape.hidden + per_layer)
    else:
        acts = tokens * shape.layers * per_layer
    acts += tokens * shape.hidden * 2 * 4  # final norm, LM-head input and its grad
    acts += 1024 * shape.vocab * 4 * 2  # one chunk of fp32 logits (and its grad) in the chunked loss
    base = (states + acts) / GIB
    return MemoryEstimate(states / GIB, acts / GIB, 0.05 * base + 2.0, checkpointing)


def choose_checkpointing(cfg: SFTConfig, shape: ModelShape) -> bool:
    """Full checkpointing unless the activations of a whole micro-batch fit (it costs ~1/3 more compute)."""
    if cfg.gradient_checkpointing != "auto":
        return cfg.gradient_checkpointing == "full"
    return memory_per_gpu(cfg, shape, checkpointing=False).total_gib > 0.92 * cfg.hardware.gpu_memory_gib


def count_packed_rows(lengths: Sequence[int], capacity: int) -> int:
    """Rows after best-fit-decreasing packing into `capacity` tokens (as TRL's "bfd")."""
    free: list[int] = []
    rows = 0
    for n in sorted(lengths, reverse=True):
        i = bisect_left(free, n)
        if i < len(free):
            left = free.pop(i) - n
        else:
            rows += 1
            left = capacity - n
        if left > 0:
            insort(free, left)
    return rows


def estimate(
    cfg: SFTConfig,
    model_config: Any,
    *,
    lengths: Sequence[int],
    target_tokens: int,
    rows_in: int,
    dropped_long: int,
    truncated: int,
) -> Estimate:
    """The pre-flight estimate for `cfg` on a dataset with the given token lengths."""
    shape = ModelShape.from_config(model_config)
    ckpt = choose_checkpointing(cfg, shape)
    mem = memory_per_gpu(cfg, shape, checkpointing=ckpt)
    rows = count_packed_rows(lengths, cfg.max_length) if cfg.packing else len(lengths)
    steps_per_epoch = max(1, math.ceil(rows / cfg.global_batch_size))
    steps = cfg.max_steps or math.ceil(steps_per_epoch * cfg.epochs)
    tokens = sum(lengths)
    if cfg.tokens_per_s_per_gpu:
        rate, source = cfg.tokens_per_s_per_gpu, "measured (recipe's tokens_per_s_per_gpu)"
    else:
        flops = sum(shape.flops_per_doc(n) for n in lengths) / max(tokens, 1)
        rate = ASSUMED_MFU * cfg.hardware.gpu_peak_tflops * 1e12 / flops
        source = f"assumed {ASSUMED_MFU:.0%} MFU (set tokens_per_s_per_gpu from bench/sft_throughput.py)"
    epochs = cfg.epochs if cfg.max_steps is None else min(cfg.epochs, steps / steps_per_epoch)
    gpu_hours = tokens * epochs / rate / 3600
    return Estimate(
        rows=len(lengths),
        dropped_long=dropped_long,
        truncated=truncated,
        tokens=tokens,
        target_tokens=target_tokens,
        max_sample=max(lengths, default=0),
        packed_rows=rows,
        steps=steps,
        params=shape.params,
        memory=mem,
        tokens_per_s_per_gpu=rate,
        throughput_source=source,
        gpu_hours=gpu_hours,
        gpus=cfg.hardware.world_size,
        fits=mem.total_gib <= cfg.hardware.gpu_memory_gib,
    )


def check_fits(cfg: SFTConfig, est: Estimate) -> None:
    """Refuse, before launching, a recipe whose estimate exceeds the declared GPU memory."""
    if est.fits:
        return
    hw = cfg.hardware
    hints = []
    if not est.memory.gradient_checkpointing:
        hints.append("gradient_checkpointing: full")
    if hw.sharding in ("none", "ddp"):
        hints.append("sharding: zero3 or fsdp2 over more GPUs")
    hints.append(f"sequence_parallel: {hw.sequence_parallel * 2}" if hw.sharding == "zero3" else "more GPUs")
    raise ConfigError(
        f"the recipe does not fit: ~{est.memory.total_gib:.0f} GiB per GPU needed "
        f"(states {est.memory.states_gib:.0f}, activations {est.memory.activations_gib:.0f}) but "
        f"{hw.gpu_memory_gib:.0f} GiB declared on {hw.world_size} GPU(s); try {' or '.join(hints)}"
    )
