"""The trainer's arguments and the choices behind them: RoPE extension, attention, loss, checkpointing.

Everything here maps the recipe onto transformers/TRL names (and their version differences); nothing
loads a model. `train.py` calls these in order; the benchmark and the tests call them alone.
"""

from __future__ import annotations

import logging
from typing import Any

from distill.errors import ConfigError
from distill.training.config import SFTConfig

__all__ = [
    "attention_label",
    "extend_rope",
    "loss_label",
    "resolve_attention",
    "resolve_loss",
    "trainer_arguments",
    "ulysses_packs",
]

log = logging.getLogger(__name__)


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


def attention_label(cfg: SFTConfig) -> str:
    sp = cfg.hardware.sequence_parallel
    if sp > 1 and not ulysses_packs(cfg):
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


def loss_label(cfg: SFTConfig) -> str:
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


def ulysses_packs(cfg: SFTConfig) -> bool:
    return cfg.hardware.sequence_parallel > 1 and cfg.packing and cfg.attention in ("auto", "varlen")
