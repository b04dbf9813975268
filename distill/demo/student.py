"""Serve a small local checkpoint on the CPU through the local OpenAI-compatible server.

    with TeacherServer(StudentResponder(ckpt, max_new_tokens=48), model="student") as srv:
        evaluate(cfg.with base_url=srv.base_url ...)

For the demo's tiny student (and tests): a few dozen tokens from a model of a few hundred thousand
parameters take milliseconds, where `transformers serve` or vLLM would take far longer to start.
Not a serving engine: requests are answered one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.testing.local_server import Reply


@dataclass
class StudentResponder:
    """A responder that answers with `model_dir`'s own generation (chat template applied)."""

    model_dir: Path
    max_new_tokens: int = 48
    seed: int = 0
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self) -> tuple[Any, Any]:
        """Load the model and tokenizer once (call it before serving to keep the first request fast)."""
        with self._lock:
            if self._loaded is None:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                with quiet_transformers():
                    tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
                    model = AutoModelForCausalLM.from_pretrained(self.model_dir)
                model.eval()
                self._loaded = (model, tokenizer)
            return self._loaded

    def __call__(self, messages: list[dict], params: dict, index: int) -> Reply:
        import torch

        model, tokenizer = self.load()
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        budget = min(int(params.get("max_tokens") or self.max_new_tokens), self.max_new_tokens)
        wanted = params.get("temperature")
        temperature = float(wanted) if wanted is not None else 0.6
        seed = params.get("seed")
        generator_seed = (self.seed if seed is None else int(seed)) * 1009 + index
        torch.manual_seed(generator_seed)
        with self._lock, torch.no_grad():
            out = model.generate(
                **ids,
                max_new_tokens=budget,
                do_sample=temperature > 0,
                temperature=max(temperature, 1e-3),
                top_p=float(params.get("top_p") or 1.0),
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :]
        finished = bool(len(new) and int(new[-1]) == tokenizer.eos_token_id)
        text = tokenizer.decode(new, skip_special_tokens=True)
        return Reply(content=text, finish_reason="stop" if finished else "length", completion_tokens=len(new))


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No transformers progress bars (loading/saving a tiny model) for the duration; restored after."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
