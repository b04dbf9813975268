"""Chat templates that keep the reasoning, and the checks that run before any training step.

The stock DeepSeek-R1-Distill template drops everything before `</think>` in assistant turns
(`content.split('</think>')[-1]`): training with it teaches a student to answer without reasoning.
Our templates render the assistant turn verbatim (or rebuild `<think>…</think>` from a separate
`reasoning_content` field) and wrap it in `{% generation %}` so that TRL's `assistant_only_loss`
gets a mask covering the reasoning, the answer and the end-of-turn token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from distill.errors import ConfigError

log = logging.getLogger(__name__)

# Assistant content: `<think>` is rebuilt from `reasoning_content` when the content lacks it.
_ASSISTANT_CONTENT = (
    "{%- set content = message['content'] if message['content'] is string else '' -%}"
    "{%- if message.get('reasoning_content') and '<think>' not in content -%}"
    "{%- set content = '<think>\\n' + message['reasoning_content'] + '\\n</think>\\n\\n' + content -%}"
    "{%- endif -%}"
)

# ChatML (Qwen2/Qwen2.5): end of turn is <|im_end|>, which must be the EOS of the student.
CHATML_THINK = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}" + _ASSISTANT_CONTENT + "{{- '<|im_start|>assistant\\n' -}}"
    "{% generation %}{{- content + '<|im_end|>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Llama 3 headers: end of turn is <|eot_id|>.
LLAMA3_THINK = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    + _ASSISTANT_CONTENT
    + "{% generation %}{{- content + '<|eot_id|>' -}}{% endgeneration %}"
    "{%- else -%}"
    "{{- message['content'] + '<|eot_id|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)

# name -> (template, end-of-turn token)
TEMPLATES: dict[str, tuple[str, str]] = {
    "chatml-think": (CHATML_THINK, "<|im_end|>"),
    "llama3-think": (LLAMA3_THINK, "<|eot_id|>"),
}

# Marks of templates that strip the reasoning from assistant turns (DeepSeek-R1-Distill, QwQ, ...).
_STRIPPING_MARKS = ("split('</think>')", 'split("</think>")', "split('</think>')[-1]")


@dataclass(frozen=True)
class TemplateCheck:
    """What the pre-flight check found: the template used and its end-of-turn token."""

    name: str  # "tokenizer" when the tokenizer's own template was kept
    eos_token: str
    eos_token_id: int
    pad_token: str
    pad_token_id: int


def template_strips_reasoning(template: str) -> bool:
    """True when a chat template drops the text before `</think>` (never train with it)."""
    return any(mark in template for mark in _STRIPPING_MARKS)


def choose_template(tokenizer: Any) -> str:
    """The named template that fits a tokenizer's special tokens."""
    vocab = tokenizer.get_vocab()
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        return "chatml-think"
    if "<|start_header_id|>" in vocab and "<|eot_id|>" in vocab:
        return "llama3-think"
    raise ConfigError(
        "the tokenizer has no chat template and no ChatML/Llama-3 special tokens: "
        "set sft.chat_template to a Jinja template with a {% generation %} block"
    )


def prepare_tokenizer(tokenizer: Any, template: str = "auto") -> TemplateCheck:
    """Install a reasoning-keeping chat template, set EOS to the end-of-turn token and a distinct pad.

    `template`: "auto" (keep the tokenizer's own template when it is safe and has a
    `{% generation %}` block, else the named template that fits), a name from TEMPLATES, or a Jinja
    string. Mutates the tokenizer in place.
    """
    own = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    name = template
    if template == "auto":
        if own and "{% generation %}" in own and not template_strips_reasoning(own):
            name = "tokenizer"
        else:
            name = choose_template(tokenizer)
            if own:
                why = (
                    "strips the reasoning"
                    if template_strips_reasoning(own)
                    else "has no {% generation %} block"
                )
                log.info("the tokenizer's chat template %s: using %s instead", why, name)
    if name in TEMPLATES:
        tokenizer.chat_template, eot = TEMPLATES[name]
    elif name == "tokenizer":
        eot = tokenizer.eos_token
    else:  # a Jinja string given in the recipe
        if template_strips_reasoning(template):
            raise ConfigError(
                "sft.chat_template strips the text before </think>: it would train without reasoning"
            )
        if "{% generation %}" not in template:
            raise ConfigError("sft.chat_template needs a {% generation %} block around the assistant turn")
        tokenizer.chat_template, eot, name = template, tokenizer.eos_token, "custom"
    vocab = tokenizer.get_vocab()
    if eot not in vocab:
        raise ConfigError(f"template {name}: end-of-turn token {eot!r} is not in the tokenizer's vocabulary")
    tokenizer.eos_token = eot
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        tokenizer.pad_token = _pick_pad(tokenizer)
    return TemplateCheck(
        name, tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.pad_token, tokenizer.pad_token_id
    )


def _pick_pad(tokenizer: Any) -> str:
    """A pad token distinct from EOS: a known reserved token if present, else a new one."""
    vocab = tokenizer.get_vocab()
    for candidate in (
        "<|finetune_right_pad_id|>",
        "<|endoftext|>",
        "<|end_of_text|>",
        "<|fim_pad|>",
        "<pad>",
    ):
        if candidate in vocab and candidate != tokenizer.eos_token:
            return candidate
    tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return "<|pad|>"


def render_masked(tokenizer: Any, input_ids: list[int], labels: list[int], width: int = 2000) -> str:
    """One tokenized sample with the trained tokens shown between ⟦ and ⟧ (printed by the dry run)."""
    pieces: list[str] = []
    current: list[int] = []
    inside = False
    for tid, lab in zip(input_ids, labels, strict=True):
        target = lab != -100
        if target != inside:
            pieces.append(tokenizer.decode(current) + ("⟦" if target else "⟧"))
            current, inside = [], target
        current.append(tid)
    pieces.append(tokenizer.decode(current) + ("⟧" if inside else ""))
    text = "".join(pieces)
    if len(text) > width:
        half = width // 2
        text = text[:half] + f"\n… [{len(text) - width} characters] …\n" + text[-half:]
    return text
