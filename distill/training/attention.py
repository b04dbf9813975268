"""Document-masked attention for packed rows: no token attends across a sample boundary.

Packed rows arrive padding-free (one row, `position_ids` restarting at 0 per sample, and the
`cu_seq_lens_q` boundaries that TRL's collator computes once per batch on the CPU). transformers'
own SDPA path turns packed `position_ids` into a dense (S×S) block-diagonal mask, which rules out
the fast SDPA kernels. We register one attention function, `distill_varlen`, that picks the
fastest kernel the machine has for the same maths:

1. FlashAttention's `flash_attn_varlen_func` when the package is installed;
2. PyTorch's own `torch.nn.attention.varlen.varlen_attn` (cuDNN/flash kernels, CUDA only);
3. one causal `scaled_dot_product_attention` call per sample (cuDNN/flash on GPU, any kernel on CPU).

Without boundaries (plain padded batches, generation with a cache) it falls back to SDPA with the
usual causal + padding mask.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

NAME = "distill_varlen"


def register(kernel: str = "auto", name: str = NAME) -> str:
    """Register the document-masked attention with transformers under `name`; return the name.

    `kernel`: "auto" (the best this machine has), "flash_attn", "torch_varlen" or "sdpa_per_doc".
    `name` is `distill_varlen`, except under Ulysses sequence parallelism, which wraps only
    transformers' own names: there it takes the "sdpa" slot of the training process.
    """
    from functools import partial

    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

    fn = document_attention if kernel == "auto" else partial(document_attention, kernel=kernel)
    AttentionInterface.register(name, fn)
    # Like FlashAttention: no dense mask is built; a 2D padding mask is passed through when present.
    ALL_MASK_ATTENTION_FUNCTIONS.register(name, flash_attention_mask)
    return name


def best_kernel(device_type: str) -> str:
    """The kernel `distill_varlen` uses on this machine: "flash_attn", "torch_varlen" or "sdpa_per_doc"."""
    import importlib.util

    if device_type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attn"
    if device_type == "cuda":
        try:
            from torch.nn.attention.varlen import varlen_attn  # noqa: F401
        except ImportError:
            return "sdpa_per_doc"
        return "torch_varlen"
    return "sdpa_per_doc"


def document_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    kernel: str | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers attention function: (B, H, S, D) inputs → (B, S, H, D) output."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None and attention_mask is None and query.shape[0] == 1 and query.shape[2] > 1:
        cu = _boundaries_from_positions(kwargs.get("position_ids"))
    if cu is None or attention_mask is not None or query.shape[2] != key.shape[2]:
        return _masked_sdpa(module, query, key, value, attention_mask, scaling), None
    max_len = kwargs.get("max_length_q") or int((cu[1:] - cu[:-1]).max())
    kernel = kernel or best_kernel(query.device.type)
    if kernel == "sdpa_per_doc":
        return _per_document_sdpa(query, key, value, cu, scaling), None
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (S, H, D)
    cu = cu.to(device=query.device, dtype=query.new_empty(0, dtype=_int32()).dtype)
    if kernel == "flash_attn":
        from flash_attn import flash_attn_varlen_func

        out = flash_attn_varlen_func(q, k, v, cu, cu, max_len, max_len, softmax_scale=scaling, causal=True)
    else:
        out = _torch_varlen(q, k, v, cu, max_len, scaling)
    return out.unsqueeze(0), None


def _int32() -> Any:
    import torch

    return torch.int32


def _torch_varlen(q: Any, k: Any, v: Any, cu: Any, max_len: int, scaling: float | None) -> Any:
    """PyTorch's varlen kernel, causal; K/V heads are repeated when the kernel lacks GQA support."""
    import inspect

    from torch.nn.attention.varlen import varlen_attn

    params = inspect.signature(varlen_attn).parameters
    extra: dict[str, Any] = {}
    if k.shape[1] != q.shape[1]:
        if "enable_gqa" in params:
            extra["enable_gqa"] = True
        else:
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    if "window_size" in params:
        extra["window_size"] = (-1, 0)  # causal
    else:
        extra["is_causal"] = True
    return varlen_attn(q, k, v, cu, cu, max_len, max_len, scale=scaling, **extra)


def _per_document_sdpa(query: Any, key: Any, value: Any, cu: Any, scaling: float | None) -> Any:
    """One causal SDPA call per packed sample (GQA handled by SDPA)."""
    import torch
    import torch.nn.functional as F

    bounds = cu.tolist()
    gqa = key.shape[1] != query.shape[1]
    outs = [
        F.scaled_dot_product_attention(
            query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], is_causal=True, scale=scaling, enable_gqa=gqa
        )
        for s, e in zip(bounds[:-1], bounds[1:], strict=False)
        if e > s
    ]
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous()


def _masked_sdpa(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None
) -> Any:
    """Plain batches: SDPA with a causal mask (offset for a cache) and the 2D padding mask."""
    import torch
    import torch.nn.functional as F

    q_len, kv_len = query.shape[2], key.shape[2]
    gqa = key.shape[1] != query.shape[1]
    if attention_mask is None and q_len == kv_len:
        out = F.scaled_dot_product_attention(
            query, key, value, is_causal=q_len > 1, scale=scaling, enable_gqa=gqa
        )
        return out.transpose(1, 2).contiguous()
    rows = torch.arange(kv_len - q_len, kv_len, device=query.device)[:, None]
    mask = torch.arange(kv_len, device=query.device)[None, :] <= rows  # (q, kv)
    mask = mask[None, None]
    if attention_mask is not None and attention_mask.dim() == 2:
        mask = mask & attention_mask[:, None, None, -kv_len:].bool()
    elif attention_mask is not None:
        mask = attention_mask.bool() if attention_mask.dtype == torch.bool else attention_mask == 0
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling, enable_gqa=gqa)
    return out.transpose(1, 2).contiguous()


def _boundaries_from_positions(position_ids: Any) -> Any:
    """Sample boundaries from packed `position_ids` (one device→host sync; the collator usually gives them)."""
    import torch

    if position_ids is None:
        return None
    pos = position_ids[0]
    starts = (pos == 0).nonzero().flatten()
    if starts.numel() <= 1:
        return None
    return torch.cat([starts, torch.tensor([pos.numel()], device=pos.device)]).to(torch.int32)
