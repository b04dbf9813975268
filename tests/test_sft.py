"""SFT: targets token by token, document masking, training behaviour, resume, recipes and bad inputs.

Tiny random Qwen2 and Llama students with locally trained tokenizers (distill/training/tiny.py), real
reasoning traces from tests/data/traces, CPU only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from distill.errors import ConfigError, InputError
from distill.training.config import HardwarePlan, SFTConfig
from distill.training.data import IGNORE, load_conversations, tokenize_conversations
from distill.training.template import prepare_tokenizer

R1_DISTILL_TEMPLATE = (  # the part of DeepSeek-R1-Distill's template that drops the reasoning
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<|Assistant|>' + content + '<|end▁of▁sentence|>'}}{% else %}{{'<|User|>' + message['content']}}"
    "{% endif %}{% endfor %}"
)
CONV = [
    {"role": "system", "content": "Reason step by step."},
    {"role": "user", "content": "What is 2+3?"},
    {"role": "assistant", "content": "<think>\n2 plus 3 is 5.\n</think>\n\nThe answer is 5."},
    {"role": "user", "content": "And 2*3?"},
    {"role": "assistant", "content": "<think>\nTwice three.\n</think>\n\n6"},
]


def _conversations_from_traces(path: Path, limit: int, chars: int = 1500) -> list[list[dict]]:
    """Real Sky-T1 traces as R1-style conversations (thought → <think>…</think>, solution → answer)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        code = row["code"] if isinstance(row["code"], list) else json.loads(row["code"])
        m = re.search(
            r"<\|begin_of_thought\|>(.*?)<\|end_of_thought\|>\s*<\|begin_of_solution\|>(.*?)"
            r"<\|end_of_solution\|>",
            code[0],
            re.S,
        )
        if not m:
            continue
        out.append(
            [
                {"role": "user", "content": row["question"]},
                {
                    "role": "assistant",
                    "content": f"<think>\n{m.group(1).strip()[:chars]}\n</think>\n\n"
                    f"{m.group(2).strip()[:400]}",
                },
            ]
        )
        if len(out) == limit:
            break
    return out


@pytest.fixture(scope="module")
def traces(shared_data: Path) -> list[list[dict]]:
    return _conversations_from_traces(shared_data / "traces" / "skyt1_32b_amc23_outputs.jsonl", limit=24)


@pytest.fixture(scope="module")
def trace_model(tmp_path_factory: pytest.TempPathFactory, traces: list[list[dict]]) -> Path:
    """A tiny Qwen2 student whose tokenizer was trained on the traces (realistic token counts)."""
    from distill.training.tiny import build_tiny_model

    texts = [t["content"] for conv in traces for t in conv]
    return build_tiny_model(tmp_path_factory.mktemp("trace-student"), "qwen2", texts, hidden=64)


def _tokenizer(path: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tok)
    return tok


def _cfg(model: Path, tmp_path: Path, **kw) -> SFTConfig:
    base = dict(
        model=str(model),
        output_dir=tmp_path / "out",
        max_length=1024,
        global_batch_size=2,
        max_steps=4,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        bf16=False,
        dataloader_workers=0,
        save_steps=100,
        resume=False,
        hardware=HardwarePlan(gpu_memory_gib=16),
    )
    return SFTConfig(**{**base, **kw})


def _write_jsonl(path: Path, conversations: list) -> Path:
    path.write_text("\n".join(json.dumps({"messages": c}) for c in conversations) + "\n", encoding="utf-8")
    return path


# ── targets ───────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_only_assistant_reasoning_answer_and_eos_are_targets(arch, tiny_model, tiny_llama_model):
    tok = _tokenizer(tiny_model if arch == "qwen2" else tiny_llama_model)
    assert tok.pad_token_id != tok.eos_token_id
    data = tokenize_conversations([CONV], tok, max_length=4096)
    ids, labels = data.input_ids[0], data.labels[0]
    # Token by token: every target equals its input id; targets form exactly the two assistant turns.
    spans, start = [], None
    for i, lab in enumerate(labels):
        assert lab in (IGNORE, ids[i])
        if lab != IGNORE and start is None:
            start = i
        if lab == IGNORE and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(labels)))
    assert [tok.decode(ids[s:e]) for s, e in spans] == [
        CONV[2]["content"] + tok.eos_token,
        CONV[4]["content"] + tok.eos_token,
    ]
    for s, e in spans:
        assert ids[e - 1] == tok.eos_token_id  # the end of each turn is learnt: the student stops
        assert tok.convert_ids_to_tokens(ids[s]) == "<think>"  # the whole reasoning is learnt
    untrained = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab == IGNORE])
    assert "Reason step by step." in untrained and "What is 2+3?" in untrained and "2 plus 3" not in untrained


def test_reasoning_content_field_is_rendered_inside_think(tiny_model):
    tok = _tokenizer(tiny_model)
    conv = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A", "reasoning_content": "because"},
    ]
    text = tok.apply_chat_template(conv, tokenize=False)
    assert "<think>\nbecause\n</think>\n\nA<|im_end|>" in text


def test_stripping_or_missing_templates_are_replaced_or_refused(tiny_model):
    tok = _tokenizer(tiny_model)
    tok.chat_template = R1_DISTILL_TEMPLATE
    assert prepare_tokenizer(tok, "auto").name == "chatml-think"  # never trains with the stripping template
    assert "<think>" in tok.apply_chat_template(CONV[1:3], tokenize=False)
    with pytest.raises(ConfigError, match="strips the text before </think>"):
        prepare_tokenizer(tok, R1_DISTILL_TEMPLATE)
    tok.chat_template = None
    assert prepare_tokenizer(tok, "auto").name == "chatml-think"  # a base tokenizer gets the named template

    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, "<unk>")), unk_token="<unk>"
    )
    with pytest.raises(ConfigError, match="no chat template"):
        prepare_tokenizer(bare, "auto")


# ── document masking ──────────────────────────────────────────────────────────


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_packed_and_unpacked_losses_agree(arch, tiny_model, tiny_llama_model, traces):
    import torch
    from transformers import AutoModelForCausalLM

    from distill.training import attention

    path = tiny_model if arch == "qwen2" else tiny_llama_model
    tok = _tokenizer(path)
    data = tokenize_conversations(traces[:3], tok, max_length=100_000)
    ids = [torch.tensor(x[:300]) for x in data.input_ids]
    labels = [torch.tensor(x[:300]) for x in data.labels]

    def logits(model, input_ids, **kw):
        return model(input_ids=input_ids[None], **kw).logits[0].float()

    def nll(lg, lab):
        return torch.nn.functional.cross_entropy(lg[:-1], lab[1:], ignore_index=IGNORE, reduction="sum")

    attention.register()
    model = AutoModelForCausalLM.from_pretrained(
        path, attn_implementation=attention.NAME, dtype=torch.float32
    )
    with torch.no_grad():
        separate = [logits(model, i) for i in ids]
        pos = torch.cat([torch.arange(len(i)) for i in ids])[None]
        cu = torch.tensor([0, *torch.tensor([len(i) for i in ids]).cumsum(0).tolist()], dtype=torch.int32)
        packed = logits(
            model,
            torch.cat(ids),
            position_ids=pos,
            cu_seq_lens_q=cu,
            cu_seq_lens_k=cu,
            max_length_q=300,
            max_length_k=300,
        )
        # Without boundaries the same packed row attends across samples (the bug packing must not have).
        model.set_attn_implementation("sdpa")
        leaky = logits(model, torch.cat(ids))
    unpacked_loss = sum(nll(lg, lab) for lg, lab in zip(separate, labels, strict=True))
    packed_loss = sum(
        nll(lg, lab) for lg, lab in zip(packed.split([len(i) for i in ids]), labels, strict=True)
    )
    assert torch.allclose(packed_loss, unpacked_loss, rtol=1e-5), (packed_loss, unpacked_loss)
    assert torch.allclose(packed, torch.cat(separate), atol=1e-4)
    assert (leaky - torch.cat(separate)).abs().max() > 100 * (packed - torch.cat(separate)).abs().max()


def test_sequence_parallel_batches_split_evenly_and_keep_packed_samples_apart(
    tiny_model, traces, tmp_path, monkeypatch
):
    """Under DeepSpeed Ulysses: rows hold only tensors it can split (evenly), the meter counts each
    slice's share, and attention handed no mask and no boundaries (as Ulysses calls it) stays per sample."""
    import torch
    from transformers import AttentionInterface, AutoModelForCausalLM
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from distill.training.arguments import trainer_arguments
    from distill.training.throughput import token_counts
    from distill.training.train import prepare_attention
    from distill.training.ulysses import UlyssesBatch

    for mapping in (AttentionInterface._global_mapping, ALL_MASK_ATTENTION_FUNCTIONS._global_mapping):
        monkeypatch.setitem(mapping, "sdpa", mapping["sdpa"])  # restored after the test
    plan = HardwarePlan(gpus_per_node=2, sharding="zero3", sequence_parallel=2, gpu_memory_gib=16)
    cfg = _cfg(tiny_model, tmp_path, packing=True, hardware=plan)
    args = trainer_arguments(cfg, on_gpu=False, checkpointing=False)
    assert args.pad_to_multiple_of == 2

    tok = _tokenizer(tiny_model)
    data = tokenize_conversations(traces[:3], tok, max_length=100_000)
    docs = [x[:n] for x, n in zip(data.input_ids, (120, 95, 150), strict=True)]  # 365 tokens: odd
    packed = {"input_ids": sum(docs, []), "seq_lengths": [len(d) for d in docs]}
    collate = DataCollatorForLanguageModeling(
        pad_token_id=tok.pad_token_id, padding_free=True, pad_to_multiple_of=args.pad_to_multiple_of
    )
    full = collate([packed])
    batch = UlyssesBatch(collate)([packed])
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert all(t.dim() == 2 and t.shape[1] == 366 for t in batch.values())
    halves = [token_counts({"position_ids": p}) for p in batch["position_ids"].split(183, dim=1)]
    assert (
        tuple(map(sum, zip(*halves, strict=True))) == token_counts(full) == (366, 120**2 + 95**2 + 150**2 + 1)
    )

    assert prepare_attention(cfg) == "sdpa"
    kernel = AttentionInterface._global_mapping["sdpa"]

    def as_ulysses_calls_it(module, query, key, value, attention_mask, *a, **kw):
        assert "position_ids" in kw and "cu_seq_lens_q" not in kw
        return kernel(module, query, key, value, None, *a, **kw)

    monkeypatch.setitem(AttentionInterface._global_mapping, "sdpa", as_ulysses_calls_it)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa", dtype=torch.float32)
    with torch.no_grad():
        row = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0, :365]
        separate = torch.cat([model(input_ids=torch.tensor([d])).logits[0] for d in docs])
    assert torch.allclose(row, separate, atol=1e-4)


def test_ulysses_loader_starts_every_epoch_afresh():
    """DeepSpeed's Ulysses adapter returns itself from iter() and rewinds only after a failed next();
    Trainer reads len() micro-batches per epoch, so without FreshEpochs epoch 2 would start spent."""
    from collections import deque

    from distill.training.ulysses import FreshEpochs

    class Rows(list):
        epochs: list[int] = []

        def set_epoch(self, epoch: int) -> None:
            self.epochs.append(epoch)

    class UlyssesLikeAdapter:  # the iteration contract of deepspeed's UlyssesSPDataLoaderAdapter
        def __init__(self, dl):
            self.dl, self.iter, self.micro_batches = dl, iter(dl), deque()

        def __len__(self):
            return len(self.dl) * 2

        def __iter__(self):
            return self

        def __next__(self):
            if not self.micro_batches:
                try:
                    row = next(self.iter)
                except StopIteration:
                    self.iter = iter(self.dl)
                    raise
                self.micro_batches.extend([(row, 0), (row, 1)])
            return self.micro_batches.popleft()

    def epoch(loader):  # as Trainer reads one: exactly len() micro-batches
        it = iter(loader)
        return [next(it) for _ in range(len(loader))]

    rows = Rows(["a", "b", "c"])
    plain = UlyssesLikeAdapter(rows)
    epoch(plain)
    with pytest.raises(StopIteration):
        epoch(plain)  # the bug: the second epoch begins on the spent loader
    fresh = FreshEpochs(UlyssesLikeAdapter(rows))
    full = [(r, half) for r in "abc" for half in (0, 1)]
    assert epoch(fresh) == epoch(fresh) == full
    fresh.set_epoch(1)  # reaches the wrapped dataloader (its sampler reshuffles)
    assert rows.epochs == [1]


def test_sequence_parallel_loss_is_the_token_mean_of_the_step(tmp_path):
    """Ulysses gives each micro-batch's token mean; reweighted, the step's loss is the token mean of
    all its micro-batches (as without SP), not the mean of their means."""
    import torch
    import torch.distributed as dist

    from distill.training.ulysses import UlyssesTokenMean

    def shard(trained: int, length: int = 400) -> dict:
        labels = torch.full((1, length), -100)
        labels[0, :trained] = 7
        return {"shift_labels": labels}

    class Trainer:  # the two Trainer methods UlyssesTokenMean wraps
        def get_batch_samples(self, epoch_iterator, num_batches, device):
            return [next(epoch_iterator) for _ in range(num_batches)], None

        def compute_loss(self, model, inputs, num_items_in_batch=None):
            return torch.tensor(inputs["sum_nll"] / int((inputs["shift_labels"] != -100).sum()))

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        trainer = Trainer()
        UlyssesTokenMean(trainer, data_parallel=1, sp_group=dist.group.WORLD)
        full, short = {**shard(300), "sum_nll": 600.0}, {**shard(100), "sum_nll": 500.0}
        batches, _ = trainer.get_batch_samples(iter([full, short]), 2, torch.device("cpu"))
        model = torch.nn.Linear(1, 1).train()
        losses = [trainer.compute_loss(model, b) for b in batches]
    finally:
        dist.destroy_process_group()
    assert sum(losses) / len(batches) == pytest.approx((600 + 500) / (300 + 100))  # not (2 + 5) / 2


# ── training behaviour ────────────────────────────────────────────────────────


def test_loss_decreases_on_real_traces(trace_model, traces, tmp_path):
    from distill.training.train import sft

    data = _write_jsonl(tmp_path / "traces.jsonl", traces)
    report = sft(_cfg(trace_model, tmp_path, max_steps=8, global_batch_size=2), dataset=data)
    assert report.steps == 8 and len(report.losses) == 8
    assert sum(report.losses[-2:]) / 2 < report.losses[0] - 0.3, report.losses
    assert report.tokens_per_s_per_gpu and report.tokens_per_s_per_gpu > 0
    assert (tmp_path / "out" / "sft_report.json").exists()


def test_overfit_student_stops_with_eos(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.training.train import sft

    conv = [
        {"role": "user", "content": "What is 2+3?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n5"},
    ]
    data = _write_jsonl(tmp_path / "one.jsonl", [conv] * 4)
    sft(
        _cfg(
            tiny_model,
            tmp_path,
            max_steps=40,
            learning_rate=1e-2,
            global_batch_size=1,
            packing=False,
            lr_scheduler="constant",
        ),
        dataset=data,
    )
    tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")  # as a user loads it: default attention
    prompt = tok.apply_chat_template(
        conv[:1], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=40, do_sample=False)
    new = out[0, prompt["input_ids"].shape[1] :].tolist()
    assert tok.eos_token_id in new, tok.decode(new)  # generation stops
    assert tok.decode(new[: new.index(tok.eos_token_id)]) == conv[1]["content"]


def test_resume_after_interruption_continues_from_checkpoint(trace_model, traces, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from distill.training.train import sft

    data = _write_jsonl(
        tmp_path / "t.jsonl", [[c[0], {**c[1], "content": c[1]["content"][:300]}] for c in traces[:8]]
    )

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise KeyboardInterrupt

    cfg = _cfg(
        trace_model,
        tmp_path,
        max_steps=4,
        save_steps=2,
        resume=True,
        output_dir=tmp_path / "a",
        max_length=256,
    )
    with pytest.raises(KeyboardInterrupt):
        sft(cfg, dataset=data, callbacks=[Interrupt()])
    assert (tmp_path / "a" / "checkpoint-2").is_dir() and not (tmp_path / "a" / "checkpoint-4").exists()
    resumed = sft(cfg, dataset=data)
    assert resumed.resumed_from and resumed.resumed_from.endswith("checkpoint-2") and resumed.steps == 4
    straight = sft(cfg.model_copy(update={"output_dir": tmp_path / "b"}), dataset=data)
    assert straight.resumed_from is None
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in b)  # same weights as an uninterrupted run


# ── dry run, recipes, bad inputs ──────────────────────────────────────────────


def test_dry_run_reads_a_run_dir_and_prints_a_masked_example(trace_model, traces, run_dir, tmp_path):
    import polars as pl

    from distill import schema
    from distill.training.train import sft

    run_dir.ensure()
    run_dir.write_rows(pl.DataFrame({schema.MESSAGES: traces[:6]}), config="sft")
    lengths = sorted(tokenize_conversations(traces[:6], _tokenizer(trace_model), max_length=10**6).lengths)
    report = sft(
        _cfg(trace_model, tmp_path, max_length=lengths[3], epochs=2, max_steps=None),
        dataset=run_dir.root,
        dry_run=True,
    )
    e = report.estimate
    assert e.rows + e.dropped_long == 6 and e.dropped_long > 0 and e.truncated == 0
    assert e.steps == 2 * -(-e.packed_rows // 2) and e.tokens > 0 and e.memory.total_gib > 0
    assert "⟦<think>" in report.example and report.example.endswith("<|im_end|>⟧\n")
    assert "global batch 2 = per-device 1 × grad-accum 2 × data-parallel 1" in report.batch_plan
    assert not (tmp_path / "out").exists()  # nothing trained


def test_rope_is_extended_when_the_model_is_shorter_than_max_length(tmp_path, traces):
    from distill.training.tiny import build_tiny_model
    from distill.training.train import sft

    model = build_tiny_model(tmp_path / "m", "qwen2", max_positions=512)
    data = _write_jsonl(tmp_path / "d.jsonl", traces[:2])
    report = sft(
        _cfg(model, tmp_path, max_length=2048, rope_max_positions=2048, rope_theta=300000),
        dataset=data,
        dry_run=True,
    )
    assert report.rope.startswith("RoPE extended: max positions 512 → 2048, base ")
    assert report.rope.endswith("→ 300000")


def test_every_student_recipe_loads_and_computes_the_batch_it_claims():
    from distill.recipe import load_recipe

    paper_lr = {
        "qwen-1.5b": 1e-4,
        "qwen-7b": 8e-5,
        "qwen-14b": 7e-5,
        "qwen-32b": 6e-5,
        "llama-8b": 5e-5,
        "llama-70b": 2e-5,
    }
    files = sorted(Path("recipes/students").glob("*.yaml"))
    assert len(files) == 7
    for f in files:
        cfg = load_recipe(f).sft
        claim = re.search(
            r"# batch: per-device (\d+) x grad-accum (\d+) x data-parallel (\d+) = (\d+)", f.read_text()
        ).groups()
        computed = (
            cfg.per_device_batch_size,
            cfg.gradient_accumulation,
            cfg.hardware.data_parallel,
            cfg.global_batch_size,
        )
        assert tuple(map(int, claim)) == computed, f
        assert computed[0] * computed[1] * computed[2] == computed[3]
        key = f.stem.removeprefix("r1-distill-")
        if key in paper_lr:
            assert (cfg.learning_rate, cfg.global_batch_size, cfg.max_length, cfg.min_lr_rate) == (
                paper_lr[key],
                64,
                32768,
                0.1,
            ), f
            assert 2 <= cfg.epochs <= 3 and cfg.lr_scheduler == "cosine_with_min_lr"


def test_launch_commands_follow_the_hardware_plan(tmp_path):
    from distill.recipe import load_recipe
    from distill.training.launch import accelerate_command

    cfg32 = load_recipe(Path("recipes/students/r1-distill-qwen-32b.yaml")).sft
    cmd = accelerate_command(cfg32, tmp_path / "c.json", env={})
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    assert "--use_parallelism_config" not in cmd  # accelerate refuses it with DeepSpeed: set per rank instead
    from distill.training.arguments import trainer_arguments

    parallel = trainer_arguments(cfg32, on_gpu=False, checkpointing=True).parallelism_config
    assert (parallel.sp_backend, parallel.sp_size) == ("deepspeed", 8)
    assert parallel.sp_handler.sp_attn_implementation in ("sdpa", "flash_attention_2")
    assert cmd[cmd.index("--config_file") + 1].endswith("zero3.yaml") and cmd[-3:-1] == [
        "-m",
        "distill.training.launch",
    ]
    cfg70 = load_recipe(Path("recipes/students/r1-distill-llama-70b.yaml")).sft
    with pytest.raises(ConfigError, match="sbatch recipes/slurm/sft.slurm"):
        accelerate_command(cfg70, tmp_path / "c.json", env={})
    cmd = accelerate_command(cfg70, tmp_path / "c.json", env={"SLURM_NODEID": "2", "MASTER_ADDR": "node0"})
    assert cmd[cmd.index("--machine_rank") + 1] == "2" and cmd[cmd.index("--num_processes") + 1] == "32"
    with pytest.raises(ValueError, match="sequence_parallel"):
        HardwarePlan(gpus_per_node=8, sharding="fsdp2", sequence_parallel=2)
    with pytest.raises(ValueError, match="not a multiple"):
        SFTConfig(model="m", global_batch_size=60, hardware=HardwarePlan(gpus_per_node=8, sharding="ddp"))


def test_bad_inputs_are_one_line_errors(tiny_model, tmp_path, traces):
    from distill.training.train import sft

    no_messages = tmp_path / "nomsg.jsonl"
    no_messages.write_text(json.dumps({"problem": "x"}) + "\n")
    with pytest.raises(InputError, match=r"nomsg.jsonl.*field 'messages'.*no 'messages' column"):
        load_conversations(no_messages)
    wrong_order = _write_jsonl(tmp_path / "order.jsonl", [CONV[1:3], [CONV[2], CONV[1]]])
    with pytest.raises(InputError, match=r"order.jsonl, row 1, field 'messages': role order assistant/user"):
        load_conversations(wrong_order)
    data = _write_jsonl(tmp_path / "d.jsonl", traces[:3])
    with pytest.raises(InputError, match="no sample left after length filtering"):
        sft(_cfg(tiny_model, tmp_path, max_length=32), dataset=data, dry_run=True)
    with pytest.raises(ConfigError, match="does not fit.*GiB declared on 1 GPU"):
        sft(
            _cfg(tiny_model, tmp_path, max_length=50_000, hardware=HardwarePlan(gpu_memory_gib=1)),
            dataset=data,
            dry_run=True,
        )


def test_trained_student_is_pushed_to_the_hub_without_leaking_the_token(
    tiny_model, tmp_path, fake_hub, monkeypatch, caplog
):
    from distill.training.hub import push_model
    from distill.training.train import sft
    from tests.plugins.hub import TOKEN

    conv = [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "<think>\nsum\n</think>\n\n2"},
    ]
    data = _write_jsonl(tmp_path / "d.jsonl", [conv] * 2)
    cfg = _cfg(tiny_model, tmp_path, max_steps=2, save_steps=1, global_batch_size=1, packing=False)
    with pytest.raises(Exception, match="no Hugging Face token: set HF_TOKEN"):
        push_model(cfg.model_copy(update={"push_to_hub": True, "hub_model_id": "test-org/student"}))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    report = sft(
        cfg.model_copy(update={"push_to_hub": True, "hub_model_id": "test-org/student"}), dataset=data
    )
    files = fake_hub.files("test-org/student")
    assert {"config.json", "model.safetensors", "tokenizer.json", "sft_report.json"} <= set(files)
    assert not any(f.startswith("checkpoint-") for f in files)  # checkpoints stay local
    assert report.pushed_to.endswith("test-org/student")
    assert TOKEN not in caplog.text and TOKEN.encode() not in files["sft_report.json"]


def test_parallel_tokenization_keeps_rows_and_order(tiny_model):
    tok = _tokenizer(tiny_model)
    convs = [CONV[1:3], CONV, CONV[1:3]] * 3
    one = tokenize_conversations(convs, tok, max_length=4096, num_proc=1)
    two = tokenize_conversations(convs, tok, max_length=4096, num_proc=2)
    assert (two.input_ids, two.labels, two.lengths) == (one.input_ids, one.labels, one.lengths)


def test_several_gpus_are_launched_once_tokenized(tiny_model, tmp_path, traces):
    from distill.training.data import TokenizedData
    from distill.training.train import REPORT_FILE, TOKENIZED_DIR, sft

    data = _write_jsonl(tmp_path / "d.jsonl", traces[:4])
    seen = {}

    def launcher(cfg):  # stands in for `accelerate launch`: what each rank would receive
        seen["rows"] = TokenizedData.load(cfg.output_dir / TOKENIZED_DIR).input_ids
        (cfg.output_dir / REPORT_FILE).write_text(
            json.dumps({"steps": 3, "losses": [2.0, 1.0], "final_loss": 1.0})
        )
        return ["accelerate", "launch"]

    hw = HardwarePlan(gpus_per_node=2, sharding="fsdp2", gpu_memory_gib=16)
    report = sft(_cfg(tiny_model, tmp_path, max_length=100_000, hardware=hw), dataset=data, launcher=launcher)
    assert report.launched == ["accelerate", "launch"] and report.steps == 3 and report.final_loss == 1.0
    assert len(seen["rows"]) == report.estimate.rows == 4
    assert "data-parallel 2" in report.batch_plan
