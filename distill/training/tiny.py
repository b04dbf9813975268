"""A tiny random student (Qwen2 or Llama shaped) with a locally trained tokenizer: no download.

Used by the tests of several areas and by the offline demo. The tokenizer is a byte-level BPE
trained with `tokenizers` on the given texts (or a small built-in corpus), wrapped as a
`PreTrainedTokenizerFast` with the real special tokens of its family and a chat template that keeps
the reasoning and marks the assistant turn with `{% generation %}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Literal, cast

from distill.training.template import TEMPLATES

Arch = Literal["qwen2", "llama"]

# Special tokens of each family, in id order right after the byte-level alphabet... no: first.
_SPECIALS: dict[str, dict[str, str | list[str]]] = {
    "qwen2": {
        "bos": "<|endoftext|>",  # Qwen2 has no BOS; kept for configs that ask
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
        "extra": ["<|im_start|>", "<|im_end|>"],
        "template": "chatml-think",
    },
    "llama": {
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "pad": "<|finetune_right_pad_id|>",
        "extra": ["<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "template": "llama3-think",
    },
}

_BUILTIN_CORPUS = [
    "<think>\nWe need to find the value of x. Let me compute step by step: 2 + 3 = 5, and 5 * 4 = 20.\n"
    "Wait, let me double-check. Yes, the answer is 20.\n</think>\n\nThe answer is $\\boxed{20}$.",
    "Solve for x: 3x + 7 = 22. Subtract 7 from both sides, then divide by 3, so x = 5.",
    "What is the sum of the first 100 positive integers? Using n(n+1)/2 we get 5050.",
    "def solve(n):\n    return sum(range(1, n + 1))\n\nprint(solve(100))",
    "The quick brown fox jumps over the lazy dog. Hmm, so the probability is 1/2 + 1/4 = 3/4.",
    "Let f(x) = x^2 - 4x + 4 = (x - 2)^2, which is zero only at x = 2. Therefore the minimum is 0.",
]


def build_tiny_model(
    out_dir: Path,
    arch: Arch = "qwen2",
    texts: Iterable[str] | None = None,
    *,
    seed: int = 0,
    vocab_size: int = 1024,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    max_positions: int = 4096,
    max_corpus_chars: int = 2_000_000,
    split_digits: bool = False,
) -> Path:
    """Save a tiny random `arch` model + tokenizer + generation config into `out_dir`; return it.

    The tokenizer's EOS is the end-of-turn token (<|im_end|> or <|eot_id|>) and its pad token is a
    different one, so EOS stays a training target. `vocab_size` is the BPE target; the model's
    vocabulary is the tokenizer's length rounded up to a multiple of 64.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if arch not in _SPECIALS:
        raise ValueError(f"arch must be one of {sorted(_SPECIALS)}, got {arch!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(
        arch, texts, vocab_size=vocab_size, max_corpus_chars=max_corpus_chars, split_digits=split_digits
    )
    tokenizer.save_pretrained(out_dir)

    padded_vocab = -(-len(tokenizer) // 64) * 64
    common = dict(
        vocab_size=padded_vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model: Qwen2ForCausalLM | LlamaForCausalLM
    if arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common))
    # The padding rows of the vocabulary (ids the tokenizer does not have) decode to nothing: a trained
    # model never picks them, an untrained one may repeat one forever, so generation never offers them.
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        suppress_tokens=list(range(len(tokenizer), padded_vocab)) or None,
    )
    model.save_pretrained(out_dir)
    return out_dir


def build_tokenizer(
    arch: Arch = "qwen2",
    texts: Iterable[str] | None = None,
    *,
    vocab_size: int = 1024,
    max_corpus_chars: int = 2_000_000,
    split_digits: bool = False,
):  # noqa: ANN201 - transformers is imported lazily
    """A byte-level BPE tokenizer trained locally, with `arch`'s special tokens and chat template.

    `split_digits` makes every digit its own token, as Qwen2's pre-tokenizer does: a small student
    then learns arithmetic digit by digit instead of memorising merged numbers.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = _SPECIALS[arch]
    specials = list(dict.fromkeys([spec["bos"], spec["pad"], spec["eos"], *spec["extra"]]))
    corpus = list(_BUILTIN_CORPUS) if texts is None else list(_take_chars(texts, max_corpus_chars))

    bpe = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    # <think> and </think> are ordinary tokens of the vocabulary (as in Qwen/R1), never special:
    # special tokens can be skipped on decode, and the reasoning markers must survive it.
    bpe.add_tokens(["<think>", "</think>"])

    template, _eot = TEMPLATES[cast(str, spec["template"])]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=spec["bos"] if arch == "llama" else None,
        eos_token=spec["eos"],
        pad_token=spec["pad"],
        extra_special_tokens=[t for t in spec["extra"] if t != spec["eos"]],
        model_max_length=131072,
        padding_side="right",
    )
    if arch == "qwen2":
        # transformers declares this setter apart from its getter (the two properties interleave), which
        # mypy reads as a read-only property; the setter exists and rebuilds the post-processor.
        tokenizer.add_bos_token = False  # type: ignore[misc]
    tokenizer.chat_template = template
    return tokenizer


def _take_chars(texts: Iterable[str], limit: int) -> Iterable[str]:
    """Texts until `limit` characters have been given (keeps training a tokenizer under a second)."""
    total = 0
    for text in islice(texts, None):
        if total >= limit:
            return
        yield text[: limit - total]
        total += len(text)
