"""Chat with a model (base, with adapters attached, or reloaded from an export), optionally streaming.

Wraps ``FastLanguageModel.for_inference`` (KV cache on, left padding) and ``model.generate``.
"""
from __future__ import annotations

from typing import Iterator


def _messages(prompt: str | list[dict], system_prompt: str | None) -> list[dict]:
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = list(prompt)
    if system_prompt and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}] + messages
    return messages


def _inputs(model, tokenizer, prompt, system_prompt):
    from unsloth import FastLanguageModel

    FastLanguageModel.for_inference(model)
    encoded = tokenizer.apply_chat_template(_messages(prompt, system_prompt), add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
    return {k: v.to(model.device) for k, v in encoded.items()}


def _gen_kwargs(tokenizer, max_new_tokens: int, temperature: float) -> dict:
    kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature)
    else:
        kwargs.update(do_sample=False)
    return kwargs


def chat(model, tokenizer, prompt: str | list[dict], max_new_tokens: int = 64, temperature: float = 0.0,
         system_prompt: str | None = None) -> str:
    """One reply to a user message (or a full message list); greedy unless temperature > 0."""
    import torch

    inputs = _inputs(model, tokenizer, prompt, system_prompt)
    with torch.no_grad():
        out = model.generate(**inputs, **_gen_kwargs(tokenizer, max_new_tokens, temperature))
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def stream_chat(model, tokenizer, prompt: str | list[dict], max_new_tokens: int = 64, temperature: float = 0.0,
                system_prompt: str | None = None) -> Iterator[str]:
    """Yield the reply piece by piece as it is generated (``TextIteratorStreamer`` in a thread)."""
    from threading import Thread

    import torch
    from transformers import TextIteratorStreamer

    inputs = _inputs(model, tokenizer, prompt, system_prompt)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)

    def run():
        with torch.no_grad():
            model.generate(**inputs, streamer=streamer, **_gen_kwargs(tokenizer, max_new_tokens, temperature))

    thread = Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
