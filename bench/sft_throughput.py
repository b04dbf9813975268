"""SFT throughput: our recipe's trainer vs TRL SFTTrainer defaults, same data, same card, same call.

Random-weight Qwen2.5-1.5B-shaped model (and a 7B-shaped one), synthetic pre-tokenised samples whose
lengths follow reasoning traces (lognormal, median ~4k, 256..16k; prompt tokens masked), identical to
the peer baseline script `trl_sft_baseline.py` (not in the repository: pass it with --baseline PATH or
$DISTILL_SFT_BASELINE), whose `naive` variant (no packing, batch 1, SDPA, full
checkpointing: TRL's defaults) runs first as the baseline. Each variant runs in its own process.
Tokens are real (non-pad) tokens; MFU = Σ_docs (6·N·s + 6·L·d·s²) / (time · 989 TFLOP/s).

    python -m bench.sft_throughput --quick                         # CPU smoke, tiny model, < 1 min
    python -m bench.sft_throughput --baseline PATH --out $OUT --check   # one H100: the real numbers
    python -m bench.sft_throughput --loss-curve --out $OUT         # 1 GPU vs 2-GPU FSDP2 loss curves
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

QWEN25_15B = dict(
    hidden_size=1536,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    intermediate_size=8960,
    vocab_size=151936,
    tie_word_embeddings=True,
    max_position_embeddings=32768,
    rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
    rms_norm_eps=1e-6,
)
QWEN25_7B = dict(
    QWEN25_15B,
    hidden_size=3584,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    intermediate_size=18944,
    vocab_size=152064,
    tie_word_embeddings=False,
)
TINY = dict(
    QWEN25_15B,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=1024,
)

# name -> (shape, gradient checkpointing, grad-accum, max_length, warm-up steps)
OURS = {
    "ours_1p5b": (QWEN25_15B, "auto", 4, 16384, 2),
    "ours_7b": (QWEN25_7B, "auto", 2, 16384, 2),
    "ours_7b_8k": (QWEN25_7B, "full", 4, 8192, 2),  # only when the 16k run does not fit
    "ours_1p5b_fullckpt": (QWEN25_15B, "full", 4, 16384, 2),
    "ours_1p5b_noliger": (QWEN25_15B, "auto", 4, 16384, 2),
}
TARGET_TOK_S, STRETCH_TOK_S, TARGET_RATIO, TARGET_7B = 25_000, 30_000, 2.0, 7_500


# ── data (same generator and seed as the TRL baseline script) ───────────────
def make_lengths(n, median, sigma, lo, hi, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    total = np.clip(np.round(rng.lognormal(math.log(median), sigma, n)), lo, hi).astype(np.int64)
    prompt = np.minimum(rng.integers(100, 301, n), total // 2)
    return total, prompt, rng


def make_dataset(n, median, sigma, lo, hi, vocab, seed=0):
    import numpy as np
    from datasets import Dataset

    total, prompt, rng = make_lengths(n, median, sigma, lo, hi, seed)
    input_ids, labels = [], []
    for t, p in zip(total.tolist(), prompt.tolist(), strict=True):
        ids = rng.integers(3, vocab, t, dtype=np.int64)
        lab = ids.copy()
        lab[:p] = -100
        input_ids.append(ids.tolist())
        labels.append(lab.tolist())
    return Dataset.from_dict({"input_ids": input_ids, "labels": labels})


# ── one variant of ours, in this process ─────────────────────────────────────
def run_ours(name: str, a: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config, TrainerCallback

    from distill.training.arguments import resolve_loss
    from distill.training.config import HardwarePlan, SFTConfig
    from distill.training.estimate import ModelShape, choose_checkpointing, memory_per_gpu
    from distill.training.tiny import build_tokenizer
    from distill.training.train import build_trainer, prepare_attention, prepare_model

    shape, ckpt_mode, ga, max_len, warmup = OURS[name]
    on_gpu = torch.cuda.is_available()
    if a.quick:
        shape, max_len, warmup = TINY, a.hi, 1
    gpu_gib = torch.cuda.get_device_properties(0).total_memory / 2**30 if on_gpu else 80.0
    cfg = SFTConfig(
        model="(random)",
        max_length=max_len,
        global_batch_size=ga,
        max_steps=10_000,
        learning_rate=1e-4,
        gradient_checkpointing=ckpt_mode,
        bf16=on_gpu,
        save_steps=10**6,
        logging_steps=1,
        dataloader_workers=2,
        loss="chunked" if (name.endswith("noliger") or not on_gpu) else "auto",
        attention_kernel=a.kernel,
        hardware=HardwarePlan(gpu_memory_gib=gpu_gib),
        output_dir=Path(a.scratch) / name,
    )
    model_shape = ModelShape.from_config(Qwen2Config(**shape))
    ckpt = choose_checkpointing(cfg, model_shape)
    predicted = memory_per_gpu(cfg, model_shape, checkpointing=ckpt).total_gib
    ds = make_dataset(a.n_samples, a.median, a.sigma, a.lo, a.hi, shape["vocab_size"])
    attn = prepare_attention(cfg)
    torch.manual_seed(0)
    with torch.device("cuda" if on_gpu else "cpu"):
        model = AutoModelForCausalLM.from_config(
            Qwen2Config(**shape), dtype=torch.bfloat16 if on_gpu else None, attn_implementation=attn
        )
    tokenizer = build_tokenizer("qwen2")  # pad id 0, eos id 1: data ids are drawn from [3, vocab)
    prepare_model(model, tokenizer, cfg, on_gpu=on_gpu)

    class Stop(TrainerCallback):
        def __init__(self):
            self.t0 = None

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup:
                self.t0 = time.perf_counter()
            elif self.t0 is not None and time.perf_counter() - self.t0 >= a.timed_s:
                control.should_training_stop = True

    trainer, meter = build_trainer(
        cfg, model, tokenizer, ds, on_gpu=on_gpu, checkpointing=ckpt, callbacks=[Stop()]
    )
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    rate, mfu = meter.steady_rate(skip=warmup)
    steps = len(meter.marks) - 1 - warmup
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    from distill.training.attention import best_kernel

    return dict(
        variant=name,
        ok=True,
        tokens_per_s=rate,
        mfu_vs_989=mfu,
        timed_steps=steps,
        timed_s=meter.marks[-1][0] - meter.marks[warmup][0],
        train_wall_s=time.perf_counter() - t0,
        gradient_checkpointing=ckpt,
        grad_accum=ga,
        max_length=max_len,
        attn=attn,
        kernel=a.kernel if a.kernel != "auto" else best_kernel("cuda" if on_gpu else "cpu"),
        loss=resolve_loss(cfg, on_gpu),
        predicted_peak_gib=predicted,
        n_params=meter.params,
        peak_alloc_gib=torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None,
        peak_reserved_gib=torch.cuda.max_memory_reserved() / 2**30 if on_gpu else None,
        losses_head=losses[:3],
        losses_tail=losses[-3:],
        **device_info(),
    )


def run_attention_check(a: argparse.Namespace) -> dict:
    """Our document attention vs a float32 per-document reference: outputs and grads, every kernel here."""
    import torch
    import torch.nn.functional as F

    from distill.training.attention import document_attention

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dt = torch.bfloat16 if dev == "cuda" else torch.float32
    lens = [1000, 3000, 96, 4096] if dev == "cuda" else [50, 120, 30]
    cu = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()], dtype=torch.int32)
    S, H, KV, D = sum(lens), 12, 2, 128
    g = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(1, h, S, D, generator=g).to(dev, dt).requires_grad_() for h in (H, KV, KV))
    dout = torch.randn(1, S, H, D, generator=g).to(dev, dt)

    def ref():
        outs = []
        for s, e in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True):
            qq, kk, vv = (t.detach().double().cpu()[:, :, s:e].requires_grad_() for t in (q, k, v))
            outs.append(
                (qq, kk, vv, F.scaled_dot_product_attention(qq, kk, vv, is_causal=True, enable_gqa=True))
            )
        out = torch.cat([o[3] for o in outs], 2).transpose(1, 2)
        out.backward(dout.double().cpu())
        return out, [torch.cat([o[i].grad for o in outs], 2) for i in range(3)]

    r_out, r_grads = ref()
    result = {"variant": "attention_check", "ok": True}
    kernels = ["sdpa_per_doc"] + (["torch_varlen"] if dev == "cuda" else [])

    class M:
        num_key_value_groups = H // KV

    for kern in kernels:
        try:
            for t in (q, k, v):
                t.grad = None
            out, _ = document_attention(
                M(),
                q,
                k,
                v,
                None,
                scaling=D**-0.5,
                kernel=kern,
                cu_seq_lens_q=cu.to(dev),
                max_length_q=max(lens),
            )
            out.backward(dout)
            rel = lambda x, y: float((x.double().cpu() - y).norm() / y.norm())  # noqa: E731
            errs = dict(
                out=rel(out, r_out),
                dq=rel(q.grad, r_grads[0]),
                dk=rel(k.grad, r_grads[1]),
                dv=rel(v.grad, r_grads[2]),
            )
            timing = None
            if dev == "cuda":
                import triton.testing

                qb, kb, vb = (
                    torch.randn(1, h, 16384, D, device=dev, dtype=dt, requires_grad=True) for h in (H, KV, KV)
                )
                cub = torch.tensor([0, 2000, 6000, 9000, 16384], dtype=torch.int32, device=dev)

                def fb(qb=qb, kb=kb, vb=vb, kern=kern, cub=cub):
                    o, _ = document_attention(
                        M(),
                        qb,
                        kb,
                        vb,
                        None,
                        scaling=D**-0.5,
                        kernel=kern,
                        cu_seq_lens_q=cub,
                        max_length_q=7000,
                    )
                    o.sum().backward()

                timing = triton.testing.do_bench(fb, warmup=50, rep=300, return_mode="median")
            result[kern] = dict(errors=errs, ok=all(e < 2e-2 for e in errs.values()), fwd_bwd_ms_16k=timing)
        except Exception as e:  # noqa: BLE001 - benchmark process boundary: record and go on
            result[kern] = dict(
                ok=False, error=f"{type(e).__name__}: {e}"[:1500], traceback=traceback.format_exc()[-3000:]
            )
    return result


def loss_curve(a: argparse.Namespace) -> dict:
    """The 1.5B recipe through `distill sft` on 1 GPU, then FSDP2 on 2 GPUs: same data, same global batch."""
    import re

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from distill.training.tiny import build_tokenizer

    work = Path(a.scratch) / "loss_curve"
    work.mkdir(parents=True, exist_ok=True)
    convs = []
    for line in Path(a.traces).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        code = row["code"] if isinstance(row["code"], list) else json.loads(row["code"])
        m = re.search(
            r"<\|begin_of_thought\|>(.*?)<\|end_of_thought\|>\s*<\|begin_of_solution\|>(.*?)"
            r"<\|end_of_solution\|>",
            code[0],
            re.S,
        )
        if m:
            convs.append(
                [
                    {"role": "user", "content": row["question"]},
                    {
                        "role": "assistant",
                        "content": f"<think>\n{m.group(1).strip()[:12000]}\n</think>\n\n{m.group(2).strip()}",
                    },
                ]
            )
    data = work / "data.jsonl"
    data.write_text("\n".join(json.dumps({"messages": c}) for c in convs[:96]) + "\n", encoding="utf-8")
    tok = build_tokenizer("qwen2", [t["content"] for c in convs[:96] for t in c], vocab_size=4096)
    model_dir = work / "student"
    tok.save_pretrained(model_dir)
    torch.manual_seed(0)
    shape = dict(
        TINY if a.quick else QWEN25_15B,
        vocab_size=-(-len(tok) // 64) * 64,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Qwen2ForCausalLM(Qwen2Config(**shape)).to(torch.bfloat16).save_pretrained(model_dir)
    recipe = work / "recipe.yaml"
    recipe.write_text(
        f"sft:\n  model: {model_dir}\n  max_length: 8192\n  global_batch_size: 8\n  max_steps: 10\n"
        "  learning_rate: 1.0e-4\n  lr_scheduler: constant\n  warmup_ratio: 0.0\n  save_steps: 1000\n"
        "  logging_steps: 1\n  seed: 0\n  dataloader_workers: 0\n",
        encoding="utf-8",
    )
    runs = {"1gpu": [], "2gpu_fsdp2": ["hardware.gpus_per_node=2", "hardware.sharding=fsdp2"]}
    two_gpu_zero3 = ["hardware.gpus_per_node=2", "hardware.sharding=zero3"]
    sp2 = "hardware.sequence_parallel=2"
    long_rows = ["max_length=32768", "max_steps=4", "gradient_checkpointing=full"]
    extra = {
        "zero3": two_gpu_zero3,
        "zero3_sp2": [*two_gpu_zero3, sp2],
        # 32k-token packed rows: what sequence parallelism is for (activation memory per GPU).
        "zero3_32k": [*two_gpu_zero3, *long_rows],
        "zero3_sp2_32k": [*two_gpu_zero3, sp2, *long_rows],
    }
    runs = {name: runs[name] for name in a.base_runs.split(",")}
    for name in filter(None, a.extra_runs.split(",")):
        runs[f"2gpu_{name}"] = extra[name]
    if a.quick:  # CPU: check the path, not the numbers
        runs = {"1gpu": ["bf16=false", "max_steps=3"]}
    out: dict = {"variant": "loss_curve", "ok": True}
    for name, extra in runs.items():
        t0 = time.perf_counter()
        cmd = [
            sys.executable,
            "-m",
            "distill.cli",
            "sft",
            str(recipe),
            "--dataset",
            str(data),
            "--output-dir",
            str(work / name),
            *extra,
        ]
        env = (
            {**os.environ, "CUDA_VISIBLE_DEVICES": "0"} if name == "1gpu" else None
        )  # a 1-GPU recipe sees 1 GPU
        done = subprocess.run(cmd, check=False, timeout=400, env=env)
        rep = work / name / "sft_report.json"
        r = json.loads(rep.read_text()) if rep.exists() else {}
        out[name] = dict(
            rc=done.returncode,
            losses=r.get("losses"),
            tokens_per_s_per_gpu=r.get("tokens_per_s_per_gpu"),
            mfu=r.get("mfu"),
            peak_memory_gib=r.get("peak_memory_gib"),
            wall_s=time.perf_counter() - t0,
            launched=r.get("launched"),
        )
    for name in runs:
        other = out[name].get("losses")
        if name != "1gpu" and other and out["1gpu"]["losses"] and len(other) == len(out["1gpu"]["losses"]):
            out[name]["max_rel_diff_vs_1gpu"] = max(
                abs(x - y) / abs(x) for x, y in zip(out["1gpu"]["losses"], other, strict=True))
    l1, l2 = out["1gpu"]["losses"], out.get("2gpu_fsdp2", {}).get("losses")
    if l1 and l2 and len(l1) == len(l2):
        out["max_rel_diff"] = max(abs(x - y) / abs(x) for x, y in zip(l1, l2, strict=True))
        out["same_curve"] = out["max_rel_diff"] < 0.02
    else:
        out["ok"] = False
    return out


def device_info() -> dict:
    import torch

    info = {"torch": torch.__version__}
    for mod in ("transformers", "trl", "accelerate", "liger_kernel"):
        try:
            from importlib.metadata import version

            info[mod] = version(mod.replace("_", "-"))
        except Exception:  # noqa: BLE001
            info[mod] = None
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return info


# ── the driver ───────────────────────────────────────────────────────────────
def run_variant(name: str, a: argparse.Namespace) -> None:
    try:
        rec = run_attention_check(a) if name == "attention_check" else run_ours(name, a)
    except Exception as e:  # noqa: BLE001 - benchmark process boundary: record and go on
        import torch

        rec = dict(
            variant=name,
            ok=False,
            error=f"{type(e).__name__}: {e}"[:2000],
            traceback=traceback.format_exc()[-4000:],
            peak_alloc_gib=torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        )
    Path(a.out, f"v_{name}.json").write_text(json.dumps(rec, indent=1, default=str))


def drive(a: argparse.Namespace) -> dict:
    start = time.perf_counter()
    names = a.variants.split(",")
    results: dict[str, dict] = {}
    # The arguments this script and the TRL baseline script share.
    shared = [
        "--out",
        a.out,
        "--scratch",
        a.scratch,
        "--timed-s",
        str(a.timed_s),
        "--n-samples",
        str(a.n_samples),
        "--median",
        str(a.median),
        "--sigma",
        str(a.sigma),
        "--lo",
        str(a.lo),
        "--hi",
        str(a.hi),
    ]
    common = [*shared, "--kernel", a.kernel] + (["--quick"] if a.quick else [])
    for name in names:
        if name == "ours_7b_8k" and results.get("ours_7b", {}).get("ok"):
            continue
        left = a.deadline_s - (time.perf_counter() - start)
        need = 15 if name == "attention_check" else a.timed_s + 40
        if left < need:
            results[name] = dict(variant=name, ok=False, error=f"skipped: {left:.0f}s left")
            print("SKIP", name, flush=True)
            continue
        print(f"=== {name} ({left:.0f}s left)", flush=True)
        t0 = time.perf_counter()
        if name == "naive":
            cmd = [sys.executable, a.baseline, "--variant", "naive", *shared]
            if a.quick:
                cmd += ["--tiny", "--no-liger", "--attn-override", "sdpa"]
            path = Path(a.out, "result_naive.json")
        else:
            cmd = [sys.executable, "-m", "bench.sft_throughput", "--variant", name, *common]
            path = Path(a.out, f"v_{name}.json")
        try:
            subprocess.run(cmd, timeout=min(left, a.timed_s + 240), check=False)
        except subprocess.TimeoutExpired:
            print("TIMEOUT", name, flush=True)
        rec = (
            json.loads(path.read_text()) if path.exists() else dict(variant=name, ok=False, error="no result")
        )
        rec["wall_s"] = time.perf_counter() - t0
        results[name] = rec
        if (
            name == "attention_check"
            and a.kernel == "auto"
            and not rec.get("torch_varlen", {}).get("ok", True)
        ):
            a.kernel = "sdpa_per_doc"  # PyTorch's varlen kernel failed here: ours uses per-document SDPA
            common[common.index("--kernel") + 1] = a.kernel
            print("torch_varlen failed: ours runs with sdpa_per_doc", flush=True)
        print(
            "RESULT",
            json.dumps(
                {
                    k: rec.get(k)
                    for k in (
                        "variant",
                        "ok",
                        "tokens_per_s",
                        "mfu_vs_989",
                        "peak_alloc_gib",
                        "timed_steps",
                        "error",
                    )
                },
                default=str,
            ),
            flush=True,
        )
    return results


def table(results: dict) -> tuple[str, bool]:
    naive = results.get("naive", {})
    base = naive.get("tokens_per_s") if naive.get("ok") else None
    gpu = next((r.get("gpu") for r in results.values() if r.get("gpu")), "?")
    lines = [
        f"card: {gpu}",
        f"{'variant':22s} {'tok/s/GPU':>10s} {'MFU':>6s} {'vs naive':>8s} {'peak GiB':>8s} {'ckpt':>5s} steps",
    ]
    for name, r in results.items():
        if name == "attention_check":
            for kern, v in r.items():
                if isinstance(v, dict):
                    lines.append(
                        f"attention {kern:12s} ok={v.get('ok')} errors={v.get('errors')} "
                        f"fwd+bwd 16k={v.get('fwd_bwd_ms_16k')} ms {v.get('error', '')[:200]}"
                    )
            continue
        if not r.get("ok"):
            lines.append(f"{name:22s} FAILED: {str(r.get('error', ''))[:300]}")
            continue
        ratio = f"{r['tokens_per_s'] / base:.2f}x" if base and r.get("tokens_per_s") else "-"
        lines.append(
            f"{name:22s} {r['tokens_per_s']:10,.0f} {r['mfu_vs_989']:6.1%} {ratio:>8s} "
            f"{r.get('peak_alloc_gib') or 0:8.1f} {str(r.get('gradient_checkpointing', 'full')):>5s} "
            f"{r.get('timed_steps')}"
        )
    best15 = (
        max(
            (r.get("tokens_per_s") or 0)
            for n, r in results.items()
            if n.startswith("ours_1p5b") and r.get("ok")
        )
        if any(n.startswith("ours_1p5b") and r.get("ok") for n, r in results.items())
        else 0
    )
    ok = best15 >= TARGET_TOK_S and bool(base) and best15 >= TARGET_RATIO * base
    r7 = results.get("ours_7b", {})
    if r7.get("ok"):
        ok = ok and r7["tokens_per_s"] >= TARGET_7B
    lines.append(
        f"targets: 1.5B >= {TARGET_TOK_S:,} tok/s (stretch {STRETCH_TOK_S:,}) and >= {TARGET_RATIO}x naive; "
        f"7B >= {TARGET_7B:,}: {'MET' if ok else 'MISSED'} (best 1.5B {best15:,.0f})"
    )
    return "\n".join(lines), ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--variants", default="attention_check,naive,ours_1p5b,ours_7b,ours_7b_8k,ours_1p5b_fullckpt"
    )
    p.add_argument("--variant", help="run one variant in this process")
    p.add_argument(
        "--baseline",
        default=os.environ.get("DISTILL_SFT_BASELINE"),
        help="the peer TRL baseline script (trl_sft_baseline.py); needed for the `naive` variant",
    )
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/sft_bench"))
    p.add_argument("--scratch", default="/tmp/sft_bench_scratch")
    p.add_argument("--quick", action="store_true", help="CPU smoke run with a tiny model (< 1 min)")
    p.add_argument(
        "--kernel", default="auto", help="attention kernel of ours (auto/torch_varlen/sdpa_per_doc)"
    )
    p.add_argument("--timed-s", type=float, default=40.0)
    p.add_argument("--n-samples", type=int, default=800)
    p.add_argument("--median", type=float, default=4000)
    p.add_argument("--sigma", type=float, default=0.8)
    p.add_argument("--lo", type=int, default=256)
    p.add_argument("--hi", type=int, default=16384)
    p.add_argument("--deadline-s", type=float, default=540)
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--loss-curve", action="store_true", help="1 GPU vs 2-GPU FSDP2 loss curves (needs 2 GPUs)"
    )
    p.add_argument("--base-runs", default="1gpu,2gpu_fsdp2", help="with --loss-curve: which base runs (1gpu first)")
    p.add_argument(
        "--extra-runs", default="", help="with --loss-curve: also zero3, zero3_sp2, zero3_32k, zero3_sp2_32k on 2 GPUs (DeepSpeed)"
    )
    p.add_argument("--traces", help="a traces JSONL (default: tests/data's Sky-T1 27B MATH-500 outputs)")
    a = p.parse_args()
    if a.traces is None:
        from tests.datafiles import data_dir

        a.traces = str(data_dir() / "traces" / "skyt1_27b_math500_outputs.jsonl")
    if "naive" in a.variants.split(",") and not a.variant and not a.loss_curve and not a.baseline:
        p.error("the naive variant runs the TRL baseline: pass --baseline PATH (or set $DISTILL_SFT_BASELINE)")
    if a.quick and "--timed-s" not in sys.argv:
        a.timed_s, a.n_samples, a.median, a.lo, a.hi = 3.0, 120, 100, 32, 256
        if "--variants" not in sys.argv:
            a.variants = "attention_check,naive,ours_1p5b"
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.scratch, exist_ok=True)
    if a.variant:
        run_variant(a.variant, a)
        return
    if a.loss_curve:
        res = loss_curve(a)
        Path(a.out, "loss_curve.json").write_text(json.dumps(res, indent=1, default=str))
        print(json.dumps({k: v for k, v in res.items()}, indent=1, default=str))
        if a.check and not res.get("same_curve"):
            sys.exit(1)
        return
    results = drive(a)
    text, ok = table(results)
    Path(a.out, "sft_throughput.json").write_text(
        json.dumps(dict(results=results, argv=sys.argv), indent=1, default=str)
    )
    print("\n" + text)
    if a.check and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
