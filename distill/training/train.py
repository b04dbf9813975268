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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from distill.errors import ConfigError, StageError
from distill.extras import require_extra
from distill.sources import resolve
from distill.training.arguments import (
    attention_label,
    extend_rope,
    loss_label,
    resolve_attention,
    resolve_loss,
    trainer_arguments,
    ulysses_packs,
)
from distill.training.config import SFTConfig
from distill.training.estimate import ModelShape, check_fits, estimate
from distill.training.hub import push_model
from distill.training.report import SFTReport
from distill.training.throughput import ThroughputMeter, count_batches
from distill.training.ulysses import FreshEpochs, UlyssesBatch, UlyssesTokenMean

log = logging.getLogger(__name__)

REPORT_FILE = "sft_report.json"
TOKENIZED_DIR = "tokenized"  # rows tokenized once by the launching process, read by every rank


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
    require_extra("train", "distill sft")
    from transformers import AutoConfig, AutoTokenizer

    from distill.training.data import TokenizedData, load_conversations, tokenize_conversations
    from distill.training.template import prepare_tokenizer, render_masked

    cfg = cfg.with_flags(dataset=str(dataset) if dataset is not None else None, output_dir=output_dir)
    model_id = cfg.require_model()
    local = model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1  # Hub ids: NAME or ORG/NAME
    if local and resolve(model_id).kind == "missing":  # a local path that is not there: never a Hub lookup
        raise ConfigError(f"sft.model: {model_id}: no such folder (a Hub id looks like ORG/NAME)")
    if not cfg.dataset:
        raise ConfigError("no dataset: pass --dataset RUN|FILE|HUB_ID or set sft.dataset")
    log.info("%s", cfg.batch_plan())

    try:  # a Hub id offline, a typo or a folder without a tokenizer: one line, not a transformers traceback
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model_config = AutoConfig.from_pretrained(model_id)
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"sft.model {model_id}: cannot load its tokenizer and config ({first}); pass a local folder "
            "with model=PATH, or go online (HF_HUB_OFFLINE unset) with access to the Hub"
        ) from e
    check = prepare_tokenizer(tokenizer, cfg.chat_template)
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
        attention=attention_label(cfg),
        loss=loss_label(cfg),
        gradient_checkpointing=est.memory.gradient_checkpointing,
    )
    check_fits(cfg, est)
    if cfg.hardware.world_size > 1:
        from distill.training.launch import accelerate_config_path

        report.accelerate_config = accelerate_config_path(cfg)  # a missing config fails the dry run too
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
    elif attn == "sdpa" and ulysses_packs(cfg):
        # Ulysses drops the attention mask and gathers position_ids, so plain SDPA would attend across
        # packed samples: our document-masked kernel takes the "sdpa" slot it wraps.
        attention.register(cfg.attention_kernel, name="sdpa")
    return attn


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

    from distill.run import RunDir

    RunDir(out).write_text(out / REPORT_FILE, json.dumps(report.to_stats(), indent=2, default=str) + "\n")


def _read_back(report: SFTReport) -> SFTReport:
    """After a launched run: the rank-0 report's training numbers."""
    import json

    path = report.output_dir / REPORT_FILE
    if not path.exists():
        raise StageError(f"the launched training wrote no {path}: see its log above")
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
