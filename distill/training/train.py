"""`sft()`: fine-tune a student on distilled traces with TRL's SFTTrainer, set up to be correct and fast.

Read top to bottom: resolve the config → tokenizer + reasoning-keeping template → conversations →
tokens with assistant-only labels (over-long rows dropped and counted) → estimate (refuse what cannot
fit) → [dry run stops here] → several GPUs? hand over to `accelerate launch` → model (RoPE extended,
document-masked attention, Liger kernels) → SFTTrainer (packing, chunked loss, checkpointing chosen
by memory) → train (resume from the last checkpoint) → save → push.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import ConfigError
from distill.training.config import SFTConfig
from distill.training.estimate import Estimate, ModelShape, check_fits, estimate
from distill.training.hub import push_model
from distill.training.template import TemplateCheck
from distill.training.throughput import ThroughputMeter, count_batches

log = logging.getLogger(__name__)

REPORT_FILE = "sft_report.json"
TOKENIZED_DIR = "tokenized"  # rows tokenized once by the launching process, read by every rank


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

    def as_rows(self) -> list[tuple[str, str]]:
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


def sft(
    cfg: SFTConfig,
    *,
    dataset: str | Path | None = None,
    output_dir: Path | None = None,
    dry_run: bool = False,
    callbacks: Sequence[Any] = (),
    launcher: Callable[[SFTConfig], list[str]] | None = None,
    tokenized: Path | None = None,
) -> SFTReport:
    """Train `cfg.model` on `dataset` (a run dir, file or Hub id); a dry run only checks and estimates.

    Several GPUs on one node are launched through `accelerate launch` (`launcher`, injectable for
    tests) after the rows are tokenized once here and saved to `output_dir/tokenized`; the launched
    ranks (WORLD_SIZE set) get that folder as `tokenized` and train in-process.
    """
    from transformers import AutoConfig, AutoTokenizer

    from distill.training.data import TokenizedData, load_conversations, tokenize_conversations
    from distill.training.template import prepare_tokenizer, render_masked

    cfg = cfg.with_flags(dataset=str(dataset) if dataset is not None else None, output_dir=output_dir)
    model_id = cfg.require_model()
    if not cfg.dataset:
        raise ConfigError("no dataset: pass --dataset RUN|FILE|HUB_ID or set sft.dataset")
    log.info("%s", cfg.batch_plan())

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    check = prepare_tokenizer(tokenizer, cfg.chat_template)
    model_config = AutoConfig.from_pretrained(model_id)
    rope = extend_rope(model_config, cfg)

    if tokenized is not None:
        data = TokenizedData.load(tokenized)
    else:
        conversations, _label = load_conversations(cfg.dataset, split=cfg.dataset_split)
        data = tokenize_conversations(
            conversations, tokenizer, max_length=cfg.max_length, drop_long=cfg.drop_long
        )
    est = estimate(
        cfg,
        model_config,
        lengths=data.lengths,
        target_tokens=data.target_tokens,
        rows_in=data.rows_in,
        dropped_long=data.dropped_long,
        truncated=data.truncated,
    )
    example = render_masked(tokenizer, data.input_ids[0], data.labels[0])
    report = SFTReport(
        output_dir=cfg.output_dir,
        dry_run=dry_run,
        batch_plan=cfg.batch_plan(),
        template=check,
        example=example,
        estimate=est,
        rope=rope,
        attention=_attention_label(cfg),
        loss=_loss_label(cfg),
        gradient_checkpointing=est.memory.gradient_checkpointing,
    )
    check_fits(cfg, est)
    if dry_run:
        return report

    hw = cfg.hardware
    if hw.world_size > 1 and "WORLD_SIZE" not in os.environ:
        from distill.training.launch import launch

        data.save(cfg.output_dir / TOKENIZED_DIR)
        report.launched = (launcher or launch)(cfg)
        return _read_back(report)

    _check_visible_gpus(cfg)
    return _train(cfg, report, tokenizer, model_config, data, callbacks)


def _check_visible_gpus(cfg: SFTConfig) -> None:
    """A one-GPU recipe must see one GPU: Trainer would otherwise wrap the model in nn.DataParallel."""
    import torch

    visible = torch.cuda.device_count()
    if "WORLD_SIZE" not in os.environ and cfg.hardware.world_size == 1 and visible > 1:
        raise ConfigError(
            f"the recipe plans 1 GPU but {visible} are visible: run with CUDA_VISIBLE_DEVICES=0, or "
            f"set hardware.gpus_per_node={visible} and a sharding (ddp, fsdp2, zero3) to use them all"
        )


def _train(
    cfg: SFTConfig, report: SFTReport, tokenizer: Any, model_config: Any, data: Any, callbacks: Sequence[Any]
) -> SFTReport:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.trainer_utils import get_last_checkpoint

    on_gpu = torch.cuda.is_available()
    attn = prepare_attention(cfg)
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model, config=model_config, dtype=_dtype(cfg), attn_implementation=attn
    )
    prepare_model(model, tokenizer, cfg, on_gpu=on_gpu)
    trainer, meter = build_trainer(
        cfg,
        model,
        tokenizer,
        data.to_dataset(),
        on_gpu=on_gpu,
        checkpointing=report.gradient_checkpointing,
        callbacks=callbacks,
    )

    last = get_last_checkpoint(str(cfg.output_dir)) if cfg.resume and cfg.output_dir.is_dir() else None
    if last:
        log.info("resuming from %s", last)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    report.train_seconds = time.perf_counter() - start
    trainer.save_model(str(cfg.output_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(cfg.output_dir))

    report.resumed_from = last
    report.steps = trainer.state.global_step
    report.losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    report.final_loss = report.losses[-1] if report.losses else getattr(result, "training_loss", None)
    report.tokens_per_s_per_gpu, report.mfu = meter.steady_rate()
    report.peak_memory_gib = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None
    if trainer.is_world_process_zero():
        _write_report(cfg.output_dir, report)  # uploaded with the model
        if cfg.push_to_hub:
            report.pushed_to = push_model(cfg)
            _write_report(cfg.output_dir, report)
    return report


def _dtype(cfg: SFTConfig) -> Any:
    import torch

    return torch.bfloat16 if cfg.bf16 else torch.float32


def prepare_attention(cfg: SFTConfig) -> str:
    """Register our document-masked attention when the recipe uses it; return the attn_implementation."""
    from distill.training import attention

    attn = resolve_attention(cfg)
    if attn == attention.NAME:
        attention.register(cfg.attention_kernel)
    elif attn == "sdpa" and _ulysses_packs(cfg):
        # Ulysses drops the attention mask and gathers position_ids, so plain SDPA would attend across
        # packed samples: our document-masked kernel takes the "sdpa" slot it wraps.
        attention.register(cfg.attention_kernel, name="sdpa")
    return attn


def _ulysses_packs(cfg: SFTConfig) -> bool:
    return cfg.hardware.sequence_parallel > 1 and cfg.packing and cfg.attention in ("auto", "varlen")


def prepare_model(model: Any, tokenizer: Any, cfg: SFTConfig, *, on_gpu: bool) -> None:
    """Special tokens aligned with the tokenizer, no KV cache, Liger kernels when chosen."""
    model.config.use_cache = False
    _align_special_tokens(model, tokenizer)
    if resolve_loss(cfg, on_gpu) == "liger":
        from liger_kernel.transformers import _apply_liger_kernel_to_instance

        # Liger's RMSNorm/SwiGLU/RoPE kernels; the loss stays TRL's chunked LM head (same maths, no logits).
        _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=False)


def build_trainer(
    cfg: SFTConfig,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    *,
    on_gpu: bool,
    checkpointing: bool,
    callbacks: Sequence[Any] = (),
) -> tuple[Any, ThroughputMeter]:
    """TRL's SFTTrainer with our arguments, plus a meter of tokens/s/GPU, MFU and peak memory."""
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    args = trainer_arguments(cfg, on_gpu=on_gpu, checkpointing=checkpointing)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=list(callbacks)
    )
    shape = ModelShape.from_config(model.config)
    meter = ThroughputMeter(
        shape, cfg.hardware.gpu_peak_tflops, params=sum(p.numel() for p in model.parameters())
    )
    count_batches(trainer, meter)
    if cfg.hardware.sequence_parallel > 1:
        trainer.data_collator = UlyssesBatch(trainer.data_collator)
        adapt = trainer.accelerator.deepspeed_ulysses_dl_adapter
        trainer.accelerator.deepspeed_ulysses_dl_adapter = lambda dl, model: FreshEpochs(adapt(dl, model))
        UlyssesTokenMean(trainer, data_parallel=cfg.hardware.data_parallel)
    trainer.remove_callback(PrinterCallback)  # the meter logs each step: loss, tokens/s/GPU, MFU, memory
    trainer.add_callback(meter.callback())
    return trainer, meter


# ── pieces that make TRL correct and fast ──────────────────────────────────


def extend_rope(model_config: Any, cfg: SFTConfig) -> str | None:
    """Raise max positions and the RoPE base when the model is shorter than max_length (Qwen2.5-Math: 4k)."""
    c = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    old_pos = getattr(c, "max_position_embeddings", None)
    if not cfg.extend_rope or old_pos is None or old_pos >= cfg.max_length:
        return None
    params = getattr(c, "rope_parameters", None)
    if isinstance(params, dict) and params.get("rope_type", "default") != "default":
        raise ConfigError(
            f"the model uses {params['rope_type']} RoPE scaling with {old_pos} positions < "
            f"max_length {cfg.max_length}: lower max_length or set extend_rope: false"
        )
    if isinstance(params, dict):
        old_theta = params.get("rope_theta")
        params["rope_theta"] = cfg.rope_theta
    else:
        old_theta = getattr(c, "rope_theta", None)
        c.rope_theta = cfg.rope_theta
    c.max_position_embeddings = max(cfg.rope_max_positions, cfg.max_length)
    msg = (
        f"RoPE extended: max positions {old_pos} → {c.max_position_embeddings}, "
        f"base {old_theta} → {cfg.rope_theta:g}"
    )
    log.info("%s", msg)
    return msg


def resolve_attention(cfg: SFTConfig) -> str:
    """The attn_implementation passed to transformers."""
    from distill.training import attention

    if cfg.hardware.sequence_parallel > 1 and cfg.attention in ("auto", "varlen"):
        # accelerate lets DeepSpeed Ulysses wrap only transformers' own names: FlashAttention when
        # installed (document-masked through position_ids), else the "sdpa" slot (see prepare_attention).
        import importlib.util

        return (
            "flash_attention_2"
            if cfg.attention == "auto" and importlib.util.find_spec("flash_attn")
            else "sdpa"
        )
    if cfg.attention in ("auto", "varlen"):
        return attention.NAME if (cfg.packing or cfg.attention == "varlen") else "sdpa"
    return cfg.attention


def _attention_label(cfg: SFTConfig) -> str:
    sp = cfg.hardware.sequence_parallel
    if sp > 1 and not _ulysses_packs(cfg):
        return f"{resolve_attention(cfg)} under Ulysses sequence parallelism {sp}"
    if sp > 1 and resolve_attention(cfg) == "flash_attention_2":
        return f"flash_attention_2 (document-masked by position_ids) under Ulysses sequence parallelism {sp}"
    if cfg.attention in ("auto", "varlen") and cfg.packing:
        from distill.training.attention import best_kernel

        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            device = "cpu"
        label = f"document-masked varlen ({best_kernel(device)})"
        return label + (f" under Ulysses sequence parallelism {sp}" if sp > 1 else "")
    return cfg.attention if cfg.attention != "auto" else "sdpa"


def resolve_loss(cfg: SFTConfig, on_gpu: bool) -> str:
    """ "liger" (Liger kernels + chunked loss) or "chunked" (TRL's chunked LM-head loss alone)."""
    import importlib.util

    has_liger = importlib.util.find_spec("liger_kernel") is not None
    if cfg.loss == "liger" and not has_liger:
        raise ConfigError("sft.loss=liger but liger-kernel is not installed: pip install liger-kernel")
    if cfg.loss == "liger" or (cfg.loss == "auto" and has_liger and on_gpu):
        return "liger"
    return "chunked"


def _loss_label(cfg: SFTConfig) -> str:
    try:
        import torch

        on_gpu = torch.cuda.is_available()
    except ImportError:
        on_gpu = False
    return resolve_loss(cfg, on_gpu) + " (chunked LM-head cross-entropy, no full logits)"


def trainer_arguments(cfg: SFTConfig, *, on_gpu: bool, checkpointing: bool) -> Any:
    """TRL SFTConfig for this recipe."""
    import trl

    hw = cfg.hardware
    extra: dict[str, Any] = {}
    if cfg.lr_scheduler == "cosine_with_min_lr":
        extra["lr_scheduler_kwargs"] = {"min_lr_rate": cfg.min_lr_rate}
    if not cfg.packing and cfg.group_by_length:
        extra["train_sampling_strategy"] = "group_by_length"
    if hw.sequence_parallel > 1:
        from accelerate import ParallelismConfig
        from accelerate.utils import DeepSpeedSequenceParallelConfig

        extra["pad_to_multiple_of"] = hw.sequence_parallel  # Ulysses splits each row evenly across ranks
        # accelerate's batch skipping on resume would rebuild a plain loader without the Ulysses
        # adapter: a resumed run restores model, optimizer and schedule, and restarts the epoch's data.
        extra["ignore_data_skip"] = True
        extra["parallelism_config"] = ParallelismConfig(
            sp_backend="deepspeed",
            sp_size=hw.sequence_parallel,
            dp_shard_size=hw.data_parallel,
            # Ulysses wraps the model's own attention, so it must be told which one that is.
            sp_handler=DeepSpeedSequenceParallelConfig(sp_attn_implementation=resolve_attention(cfg)),
        )
    return trl.SFTConfig(
        output_dir=str(cfg.output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # < 1: a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=cfg.bf16 and on_gpu,
        use_cpu=not on_gpu,
        optim="adamw_torch_fused" if on_gpu else "adamw_torch",
        **_checkpointing_args(checkpointing),
        max_length=cfg.max_length,
        packing=cfg.packing,
        packing_strategy="bfd",
        padding_free=cfg.packing,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=cfg.dataloader_workers,
        report_to="none",
        disable_tqdm=True,
        ddp_find_unused_parameters=False if hw.sharding == "ddp" else None,
        **extra,
    )


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


def _checkpointing_args(on: bool) -> dict[str, Any]:
    """transformers >= 5.2x renamed gradient_checkpointing to activation_checkpointing."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    out: dict[str, Any] = {key: on}
    if on:
        out[f"{key}_kwargs" if f"{key}_kwargs" in names else "gradient_checkpointing_kwargs"] = {
            "use_reentrant": False
        }
    return out


def _align_special_tokens(model: Any, tokenizer: Any) -> None:
    """The model stops on the tokenizer's end-of-turn token and pads with a different one."""
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    gen = model.generation_config
    if gen is not None:
        eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
        gen.eos_token_id = list(dict.fromkeys([tokenizer.eos_token_id, *[e for e in eos if e is not None]]))
        gen.pad_token_id = tokenizer.pad_token_id


# ── report files and the Hub ───────────────────────────────────────────────


def _write_report(out: Path, report: SFTReport) -> None:
    import json
    from dataclasses import asdict

    from distill.run import RunDir

    data = asdict(report)
    data["estimate"] = report.estimate.as_dict()
    RunDir(out).write_text(out / REPORT_FILE, json.dumps(data, indent=2, default=str) + "\n")


def _read_back(report: SFTReport) -> SFTReport:
    """After a launched run: the rank-0 report's training numbers."""
    import json

    path = report.output_dir / REPORT_FILE
    if not path.exists():
        raise ConfigError(f"the launched training wrote no {path}: see its log above")
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in (
        "steps",
        "final_loss",
        "losses",
        "tokens_per_s_per_gpu",
        "mfu",
        "peak_memory_gib",
        "train_seconds",
        "resumed_from",
        "pushed_to",
    ):
        setattr(report, key, data.get(key))
    return report
