"""An LLM at a PyPokerEngine table that is legal by construction.

``LLMPlayer`` renders each decision with the same ``render_prompt`` used for the training data, then
**scores only the legal candidate actions** (``Spot.candidates``: fold/check/call and the bb menu of
raise sizes clipped to the engine's min/max) under the model and plays the best one::

    score(candidate) = Σ_t log p(token_t | prompt, candidate tokens < t)     (answer + <|im_end|>)

The prompt is encoded once; its KV cache is repeated across the candidates, which are scored in one
batched forward pass. The choice is made in two stages (``pick``): the verb with the highest total
probability over its sizes, then that verb's best size. Greedy by default; ``temperature > 0`` samples.

``mode="generate"`` is what most public projects do: free-text ``generate`` then parse. It is kept for
comparison: every unparseable or illegal answer is counted and replaced by a legal default (check if
free, else fold), so the game never crashes.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

import torch

from .actions import Action, parse_action, to_engine
from .render import render_prompt
from .state import QuietPlayer, Spot, spot_from_engine

MODES = ("score", "generate")


@dataclass
class Decision:
    """One logged decision (JSON-friendly)."""
    spot_id: str
    street: str
    prompt: str
    candidates: list[str]
    scores: list[float]  # summed log-probs, one per candidate (empty in generate mode)
    choice: str
    latency_s: float
    raw_text: str = ""  # generate mode: what the model wrote
    status: str = "ok"  # ok | unparseable | illegal | error (generate mode / exceptions)


def messages(prompt: str, system_prompt: str | None = None) -> list[dict]:
    """The conversation as in training: optional system turn, then the rendered spot."""
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return head + [{"role": "user", "content": prompt}]


def chat_prefix_ids(tokenizer, prompt: str, system_prompt: str | None = None) -> list[int]:
    ids = tokenizer.apply_chat_template(messages(prompt, system_prompt), tokenize=True, add_generation_prompt=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def answer_ids(tokenizer, prompt: str, answer: str, prefix: list[int], system_prompt: str | None = None) -> list[int]:
    """Token ids of ``answer`` + end-of-turn exactly as the chat template writes them after the prompt
    (the same tokens the model was trained to produce)."""
    full = tokenizer.apply_chat_template(messages(prompt, system_prompt) + [{"role": "assistant", "content": answer}],
                                         tokenize=True)
    full = list(full["input_ids"] if hasattr(full, "keys") else full)
    if full[:len(prefix)] != prefix:
        raise ValueError("the chat template tokenizes the prompt differently with an answer attached; "
                         "candidate scoring needs a prefix-stable template")
    rest = full[len(prefix):]
    end = tokenizer.eos_token_id
    return rest[: rest.index(end) + 1] if end in rest else rest


@torch.no_grad()
def score_candidates(model, tokenizer, prompt: str, candidates: list[str], system_prompt: str | None = None) -> list[float]:
    """Summed log-probability of each candidate answer after ``prompt``.

    The prompt (P tokens) runs once; its KV cache is repeated n times and the n candidates
    (padded to length L) run as one batch of shape (n, L). Log-prob of candidate token t comes from the
    logits at t-1, the first one from the prompt's last position.
    """
    prefix = chat_prefix_ids(tokenizer, prompt, system_prompt)
    cands = [answer_ids(tokenizer, prompt, c, prefix, system_prompt) for c in candidates]
    device = model.device
    # logits_to_keep=1: only the last prompt position's logits are needed (saves the P×V lm_head product)
    out = model(input_ids=torch.tensor([prefix], device=device), use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[0, -1].float(), -1)  # (V,)
    n, width = len(cands), max(len(c) for c in cands)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = torch.tensor([c + [pad] * (width - len(c)) for c in cands], device=device)  # (n, L)
    cache = out.past_key_values
    cache.batch_repeat_interleave(n)
    # Right padding needs no mask: causal attention means real tokens never see the pads after them.
    logits = model(input_ids=batch, past_key_values=cache, use_cache=True).logits.float()  # (n, L, V)
    logp = torch.log_softmax(logits, -1)
    scores = []
    for i, c in enumerate(cands):
        total = first[c[0]].item()
        for t in range(1, len(c)):
            total += logp[i, t - 1, c[t]].item()
        scores.append(total)
    return scores


def pick(candidates: list[str], scores: list[float], temperature: float, rng: random.Random) -> int:
    """Choose a candidate in two stages: the verb, then the size.

    A verb's score is the log of the total probability of all its candidates (logsumexp over, e.g.,
    "bet 1.6", "bet 3.3", "bet 5"): otherwise the model's belief that it should bet is split across the
    sizes and a single "check" wins although "bet" is more likely overall. Then the best (or sampled)
    size of that verb. Greedy when temperature is 0, else both stages sample from softmax(score / T).
    """
    verbs: dict[str, list[int]] = {}
    for i, name in enumerate(candidates):
        verbs.setdefault(name.split()[0], []).append(i)
    names = list(verbs)
    totals = torch.tensor([torch.logsumexp(torch.tensor([scores[i] for i in verbs[v]]), 0).item() for v in names])

    def choose(values: torch.Tensor) -> int:
        if temperature <= 0:
            return int(values.argmax())
        return rng.choices(range(len(values)), weights=torch.softmax(values / temperature, 0).tolist())[0]

    members = verbs[names[choose(totals)]]
    return members[choose(torch.tensor([scores[i] for i in members]))]


def default_action(spot: Spot) -> Action:
    """The legal fallback: check when it is free, else fold."""
    verbs = {a.verb for a in spot.candidates}
    return Action("check") if "check" in verbs else Action("fold")


class LLMPlayer(QuietPlayer):
    """A (fine-tuned) causal LM as a PyPokerEngine player; never emits an illegal action in score mode."""

    def __init__(self, model, tokenizer, mode: str = "score", temperature: float = 0.0, seed: int = 0,
                 style: str = "compact", max_new_tokens: int = 8, keep_prompts: bool = True,
                 system_prompt: str | None = None):
        if mode not in MODES:
            raise ValueError(f"LLMPlayer mode = {mode!r}: must be one of {list(MODES)}")
        if temperature < 0:
            raise ValueError(f"LLMPlayer temperature = {temperature}: must be >= 0 (0 = greedy)")
        self.model, self.tokenizer = model, tokenizer
        self.mode, self.temperature, self.style = mode, temperature, style
        self.max_new_tokens, self.keep_prompts = max_new_tokens, keep_prompts
        self.system_prompt = system_prompt  # must match the one used in training
        self.rng = random.Random(seed)
        self.decisions: list[Decision] = []
        model.eval()

    # ----------------------------------------------------------------- deciding
    def decide(self, spot: Spot) -> tuple[Action, Decision]:
        """Choose an action for a spot (usable without a table, e.g. on a held-out spot file)."""
        start = time.perf_counter()
        prompt = render_prompt(spot, self.style)
        names = [str(a) for a in spot.candidates]
        scores, raw, status = [], "", "ok"
        if self.mode == "score":
            scores = score_candidates(self.model, self.tokenizer, prompt, names, self.system_prompt)
            action = spot.candidates[pick(names, scores, self.temperature, self.rng)]
        else:
            raw = self.generate(prompt)
            action, status = self.parse_legal(raw, spot)
        decision = Decision(spot.spot_id, spot.street, prompt if self.keep_prompts else "", names, scores, str(action),
                            time.perf_counter() - start, raw, status)
        return action, decision

    def generate(self, prompt: str) -> str:
        ids = torch.tensor([chat_prefix_ids(self.tokenizer, prompt, self.system_prompt)], device=self.model.device)
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                                      do_sample=self.temperature > 0, temperature=self.temperature or None,
                                      pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    @staticmethod
    def parse_legal(text: str, spot: Spot) -> tuple[Action, str]:
        """Free text -> a legal Action and a status; anything else becomes the legal default."""
        try:
            action = parse_action(text.strip().splitlines()[0] if text.strip() else text)
        except (ValueError, IndexError):
            return default_action(spot), "unparseable"
        try:
            to_engine(action, spot.valid_actions(), bb=spot.bb_chips, hero_paid=round(spot.hero_in * spot.bb_chips))
        except ValueError:
            return default_action(spot), "illegal"
        return action, "ok"

    # ----------------------------------------------------------------- PyPokerEngine interface
    def declare_action(self, valid_actions, hole_card, round_state):
        spot = spot_from_engine(hole_card, round_state, valid_actions, self.uuid)
        try:
            action, decision = self.decide(spot)
        except Exception as exc:  # a model error must not crash the match: legal default, counted
            action = default_action(spot)
            decision = Decision(spot.spot_id, spot.street, "", [str(a) for a in spot.candidates], [], str(action), 0.0,
                                f"{type(exc).__name__}: {exc}", "error")
        self.decisions.append(decision)
        return to_engine(action, valid_actions, bb=spot.bb_chips, hero_paid=round(spot.hero_in * spot.bb_chips))

    # ----------------------------------------------------------------- reporting
    @property
    def forced_decisions(self) -> int:
        """Decisions replaced by the legal default (read by the arena after each hand)."""
        return sum(d.status != "ok" for d in self.decisions)

    def stats(self) -> dict:
        n = len(self.decisions)
        total = sum(d.latency_s for d in self.decisions)
        count = lambda s: sum(d.status == s for d in self.decisions)  # noqa: E731
        return {"decisions": n, "decisions_per_s": n / total if total else 0.0, "unparseable": count("unparseable"),
                "illegal": count("illegal"), "errors": count("error"),
                "unparseable_or_illegal_rate": (count("unparseable") + count("illegal")) / n if n else 0.0}

    def log(self) -> list[dict]:
        return [asdict(d) for d in self.decisions]
