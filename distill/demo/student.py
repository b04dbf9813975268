"""Serve a small local checkpoint on the CPU through the local OpenAI-compatible server.

    with TeacherServer(StudentResponder(ckpt, max_new_tokens=48), model="student") as srv:
        evaluate(cfg.with base_url=srv.base_url ...)

For the demo's tiny student (and tests): a few dozen tokens from a model of a few hundred thousand
parameters take milliseconds, where `transformers serve` or vLLM would take far longer to start.
Not a serving engine: requests are answered one at a time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.testing.local_server import Reply


@dataclass
class StudentResponder:
    """A responder that answers with `model_dir`'s own generation (chat template applied).

    `device` "auto" takes a GPU when there is one. Calls are answered one at a time; wrap it in
    `BatchingResponder` to generate concurrent requests together (what a GPU needs to be fast).
    """

    model_dir: Path
    max_new_tokens: int = 48
    seed: int = 0
    device: str = "auto"
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self) -> tuple[Any, Any]:
        """Load the model and tokenizer once (call it before serving to keep the first request fast)."""
        with self._lock:
            if self._loaded is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                device = self.device
                if device == "auto":
                    device = "cuda" if torch.cuda.is_available() else "cpu"
                with quiet_transformers():
                    tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
                    model = AutoModelForCausalLM.from_pretrained(self.model_dir).to(device)  # type: ignore[arg-type]
                model.eval()
                self._loaded = (model, tokenizer)
            return self._loaded

    def __call__(self, messages: list[dict], params: dict, index: int) -> Reply:
        return self.generate_batch([(messages, params, index)])[0]

    def generate_batch(self, requests: Sequence[tuple[list[dict], dict, int]]) -> list[Reply]:
        """One reply per (messages, params, index), generated as one left-padded batch.

        The sampling settings and seed of the first request apply to the whole batch (an
        evaluation sends the same settings with every request); a reply ends at its first EOS.
        """
        import torch

        model, tokenizer = self.load()
        messages, params, index = requests[0]
        texts = [
            tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
            for m, _, _ in requests
        ]
        ids = tokenizer(
            texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        ).to(model.device)
        budget = min(int(params.get("max_tokens") or self.max_new_tokens), self.max_new_tokens)
        wanted = params.get("temperature")
        temperature = float(wanted) if wanted is not None else 0.6
        seed = params.get("seed")
        torch.manual_seed((self.seed if seed is None else int(seed)) * 1009 + index)
        with self._lock, torch.no_grad():
            out = model.generate(
                **ids,
                max_new_tokens=budget,
                do_sample=temperature > 0,
                temperature=max(temperature, 1e-3),
                top_p=float(params.get("top_p") or 1.0),
                pad_token_id=tokenizer.pad_token_id,
            )
        return [self._reply(row, tokenizer) for row in out[:, ids["input_ids"].shape[1] :].tolist()]

    @staticmethod
    def _reply(new: list[int], tokenizer: Any) -> Reply:
        eos = tokenizer.eos_token_id
        finished = eos in new
        new = new[: new.index(eos) + 1] if finished else new
        text = tokenizer.decode(new, skip_special_tokens=True)
        return Reply(content=text, finish_reason="stop" if finished else "length", completion_tokens=len(new))


@dataclass
class BatchingResponder:
    """An async responder for `TeacherServer`: requests that arrive while a batch is being generated
    wait, and go together as the next batch (up to `max_batch`), so a GPU serves hundreds at once."""

    student: StudentResponder
    max_batch: int = 256
    _pending: list[tuple[tuple[list[dict], dict, int], asyncio.Future]] = field(
        default_factory=list, repr=False
    )
    _worker: asyncio.Task | None = field(default=None, repr=False)

    async def __call__(self, messages: list[dict], params: dict, index: int) -> Reply:
        future = asyncio.get_running_loop().create_future()
        self._pending.append(((messages, params, index), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                replies = await asyncio.to_thread(self.student.generate_batch, [r for r, _ in batch])
            except Exception as e:  # noqa: BLE001 - a process boundary: each waiting request gets the error
                for _, future in batch:
                    future.set_exception(e)
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
                future.set_result(reply)


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
