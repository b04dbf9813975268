"""SFT settings: a student recipe (model, data, hyper-parameters, hardware plan).

The global batch is never implied: `per_device_batch_size × gradient_accumulation × data-parallel
ranks` must equal `global_batch_size`, and `batch_plan()` says so in one printed line. With
sequence parallelism, `sequence_parallel` ranks share one sequence, so data-parallel ranks are
`gpus / sequence_parallel`. Light to import: pydantic only.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from distill.config import StageConfig
from distill.errors import ConfigError


class HardwarePlan(StageConfig):
    """Where a recipe runs: GPUs, nodes, sharding and sequence parallelism."""

    gpus_per_node: int = Field(1, ge=1, description="GPUs per node (1 = run in-process, no launcher).")
    nodes: int = Field(
        1, ge=1, description="Nodes; several need the Slurm template (recipes/slurm/sft.slurm)."
    )
    sharding: Literal["none", "ddp", "fsdp2", "zero3"] = Field(
        "none",
        description="none: one GPU; ddp: replicated; fsdp2 / zero3: parameters, grads and optimizer sharded.",
    )
    sequence_parallel: int = Field(
        1,
        ge=1,
        description="GPUs that share one sequence (DeepSpeed Ulysses via accelerate parallelism_config).",
    )
    gpu_memory_gib: float = Field(80.0, gt=0, description="Usable memory of one GPU, for the fit check.")
    gpu_peak_tflops: float = Field(
        989.0, gt=0, description="Dense bf16 peak of one GPU, for MFU (H100 SXM: 989)."
    )
    cpu_offload: bool = Field(False, description="Offload optimizer states to CPU memory (ZeRO-3 only).")
    accelerate_config: Path | None = Field(
        None, description="accelerate config file; default recipes/accelerate/<sharding>.yaml."
    )

    @property
    def world_size(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def data_parallel(self) -> int:
        return self.world_size // self.sequence_parallel

    @model_validator(mode="after")
    def _consistent(self) -> HardwarePlan:
        if self.world_size % self.sequence_parallel:
            raise ValueError(
                f"sequence_parallel={self.sequence_parallel} must divide the {self.world_size} GPUs"
            )
        if self.world_size > 1 and self.sharding == "none":
            raise ValueError(f"{self.world_size} GPUs need sharding ddp, fsdp2 or zero3 (got none)")
        if self.sequence_parallel > 1 and self.sharding != "zero3":
            raise ValueError("sequence_parallel > 1 uses DeepSpeed Ulysses: set sharding: zero3")
        if self.cpu_offload and self.sharding != "zero3":
            raise ValueError("cpu_offload needs sharding: zero3")
        return self


class SFTConfig(StageConfig):
    """A student recipe: which model, which data, which hyper-parameters, on which hardware."""

    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset(
        {
            "attention",
            "attention_kernel",
            "loss",
            "gradient_checkpointing",
            "logging_steps",
            "save_steps",
            "save_total_limit",
            "resume",
            "push_to_hub",
            "hub_model_id",
            "hub_private",
            "token_env",
            "dataloader_workers",
            "tokens_per_s_per_gpu",
        }
    )

    # ── model and data ────────────────────────────────────────────────────────
    model: str = Field(
        "", description="Student: a local folder or a Hub id (weights are never fetched in tests)."
    )
    dataset: str | None = Field(
        None, description="A run directory (its `sft` view), a .jsonl/.parquet file, or a Hub dataset id."
    )
    dataset_split: str = Field("train", description="Split of a Hub dataset.")
    output_dir: Path = Field(
        Path("outputs/student"), description="Checkpoints, final model and sft_report.json."
    )
    chat_template: str = Field(
        "auto",
        description="auto (the tokenizer's if it keeps reasoning and marks the assistant turn, else a named one), "
        "chatml-think, llama3-think, or a Jinja string with a {% generation %} block.",
    )
    max_length: int = Field(32768, ge=16, description="Longest training sequence in tokens (R1: 32,768).")
    drop_long: bool = Field(
        True, description="Drop samples longer than max_length (truncation would cut the final answer)."
    )
    extend_rope: bool = Field(
        True, description="When the model's max_position_embeddings < max_length, raise it and the RoPE base."
    )
    rope_theta: float = Field(
        300_000.0, description="RoPE base used by extend_rope (open-r1 for Qwen2.5-Math)."
    )
    rope_max_positions: int = Field(32768, description="Positions set by extend_rope.")

    # ── optimisation (R1 paper v2, Table 6) ──────────────────────────────────
    epochs: float = Field(3.0, gt=0, description="Passes over the data (R1-Distill: 2-3).")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (tests, benchmarks)."
    )
    learning_rate: float = Field(1e-4, gt=0, description="Initial learning rate.")
    lr_scheduler: Literal["cosine_with_min_lr", "cosine", "linear", "constant"] = "cosine_with_min_lr"
    min_lr_rate: float = Field(
        0.1, ge=0, le=1, description="Final LR as a fraction of the initial one (R1: 0.1)."
    )
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Fraction of steps with linear warm-up.")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    global_batch_size: int = Field(
        64, ge=1, description="Rows per optimizer step (packed rows when packing)."
    )
    per_device_batch_size: int = Field(1, ge=1, description="Rows per GPU per micro-step.")
    seed: int = 42

    # ── speed (never change what is learned) ─────────────────────────────────
    packing: bool = Field(True, description="Pack samples into max_length rows with document masking.")
    attention: Literal["auto", "flash_attention_2", "varlen", "sdpa", "flex_attention", "eager"] = Field(
        "auto",
        description="auto: document-masked varlen attention (FlashAttention if installed, else PyTorch).",
    )
    attention_kernel: Literal["auto", "flash_attn", "torch_varlen", "sdpa_per_doc"] = Field(
        "auto", description="Kernel behind varlen attention; auto picks the fastest installed."
    )
    loss: Literal["auto", "liger", "chunked"] = Field(
        "auto", description="Fused/chunked cross-entropy: Liger when installed, else TRL's chunked LM head."
    )
    gradient_checkpointing: Literal["auto", "full", "off"] = Field(
        "auto", description="auto: off when activations fit in GPU memory (small models), else full."
    )
    group_by_length: bool = Field(True, description="Length-grouped batches when not packing.")
    bf16: bool = Field(True, description="bf16 weights and compute (CPU tests use fp32).")
    dataloader_workers: int = Field(2, ge=0)
    tokens_per_s_per_gpu: float | None = Field(
        None, gt=0, description="Measured throughput (bench/sft_throughput.py) for the GPU-hours estimate."
    )

    # ── bookkeeping ──────────────────────────────────────────────────────────
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(200, ge=1, description="Checkpoint every N optimizer steps.")
    save_total_limit: int = Field(2, ge=1)
    resume: bool = Field(
        True, description="Continue from the last checkpoint in output_dir when there is one."
    )
    push_to_hub: bool = Field(False, description="Upload the trained model to hub_model_id.")
    hub_model_id: str | None = None
    hub_private: bool = True
    token_env: str = Field(
        "HF_TOKEN", description="Environment variable holding the Hub token (never the token)."
    )

    hardware: HardwarePlan = Field(default_factory=HardwarePlan)

    @model_validator(mode="after")
    def _batch_divides(self) -> SFTConfig:
        per_step = self.per_device_batch_size * self.hardware.data_parallel
        if self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size={self.global_batch_size} is not a multiple of per_device_batch_size "
                f"({self.per_device_batch_size}) × data-parallel GPUs ({self.hardware.data_parallel})"
            )
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("push_to_hub needs hub_model_id")
        return self

    @property
    def gradient_accumulation(self) -> int:
        """Micro-steps per optimizer step, derived so that the global batch is exactly as declared."""
        return self.global_batch_size // (self.per_device_batch_size * self.hardware.data_parallel)

    def batch_plan(self) -> str:
        """One line: how the global batch is made (printed before every run)."""
        hw = self.hardware
        sp = f" (÷ sequence_parallel {hw.sequence_parallel})" if hw.sequence_parallel > 1 else ""
        return (
            f"global batch {self.global_batch_size} = per-device {self.per_device_batch_size} × grad-accum "
            f"{self.gradient_accumulation} × data-parallel {hw.data_parallel} "
            f"[{hw.nodes} node(s) × {hw.gpus_per_node} GPU(s){sp}, sharding {hw.sharding}]"
            + (f"; {self.global_batch_size * self.max_length:,} tokens max per step" if self.packing else "")
        )

    def require_model(self) -> str:
        if not self.model:
            raise ConfigError("sft.model is empty: name the student (a local folder or a Hub id)")
        return self.model
