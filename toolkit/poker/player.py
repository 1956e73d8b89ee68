"""An LLM at a PyPokerEngine table that is legal by construction.

``LLMPlayer`` renders each decision with the same ``render_prompt`` used for the training data, then
**scores only the legal candidate actions** (``Spot.candidates``: fold/check/call and the bb menu of
raise sizes clipped to the engine's min/max) under the model and plays the best one::

    score(candidate) = Σ_t log p(token_t | prompt, candidate tokens < t)     (answer + <|im_end|>)

One forward pass per decision: the prompt tokens not already in a recent decision's KV cache and
every candidate (as a token trie) run together under a custom attention mask (``score_candidates``,
``PrefixCache``). The choice is made in two stages (``pick``): the verb with the highest total
probability over its sizes, then that verb's best size. Greedy by default; ``temperature > 0`` samples.

``mode="generate"`` is what most public projects do: free-text ``generate`` then parse. It is kept for
comparison: every unparseable or illegal answer is counted and replaced by a legal default (check if
free, else fold), so the game never crashes.
"""
from __future__ import annotations

import copy
import random
import time
import warnings
from dataclasses import asdict, dataclass, field

import torch

from .actions import Action, parse_action, to_engine
from .render import render_prompt
from .state import QuietPlayer, Spot, spot_from_engine

MODES = ("score", "generate")
METHODS = ("packed", "batched")


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


class PrefixCache:
    """The KV caches of the last few prompts, reused for the next one (what vLLM calls prefix caching).

    Consecutive decisions share a long prefix: the chat template, the system turn, the rules lines, and
    within a hand everything up to the newest action. A player alternates seats (heads-up: SB, then BB)
    and streets, so the ``size`` most recently used prompts are kept (batch 1 each; SmolLM2-135M: ~5 MB
    per 200-token prompt) and the next prompt starts from the one it shares most tokens with; only the
    tokens after that common prefix run again. ``clear()`` drops them.
    A cache entry is only reused while ``model_key`` is unchanged (same weights, same adapters).
    """

    def __init__(self, size: int = 8):
        if size < 1:
            raise ValueError(f"PrefixCache size = {size}: must be >= 1 (prompts kept)")
        self.size = size
        self.entries: list[tuple[list[int], object]] = []  # (prompt ids, cache), most recently used last
        self.key: tuple = ()

    def clear(self) -> None:
        self.entries, self.key = [], ()

    @property
    def ids(self) -> list[int]:
        """The most recently stored prompt."""
        return self.entries[-1][0] if self.entries else []

    @staticmethod
    def model_key(model) -> tuple:
        """Changes whenever the cached keys/values may be stale: another model, weights changed in place
        (an optimizer step bumps each tensor's version counter) or replaced, adapters switched or disabled."""
        params = list(model.parameters())
        key = (id(model), sum(p._version for p in params), sum(p.data_ptr() for p in params), len(params), model.training)
        if hasattr(model, "peft_config"):  # PEFT: which adapters are active, and whether they are disabled
            lora = [m for m in model.modules() if hasattr(m, "lora_A")]
            key += (tuple(model.active_adapters), tuple(bool(getattr(m, "disable_adapters", False)) for m in lora))
        return key

    def store(self, ids: list[int], kv, key: tuple) -> None:
        if key != self.key:
            self.clear()
        self.key = key
        self.entries = (self.entries + [(ids, kv)])[-self.size:]

    @staticmethod
    def _common(a: list[int], b: list[int]) -> int:
        m = 0
        for x, y in zip(a, b):
            if x != y:
                break
            m += 1
        return m

    def take(self, ids: list[int], key: tuple) -> tuple[int, object]:
        """``(m, cache)``: the first ``m`` tokens of ``ids`` are already in ``cache`` (``m < len(ids)``, so
        at least one token runs and yields the next-token logits). ``(0, None)`` when nothing is reusable.

        The caller gets its own cache object: a shallow copy whose layers point at the stored tensors
        (cropping and extending a ``DynamicLayer`` reassign its tensors, never write into them), so the
        stored prompt stays reusable. An entry that the new prompt fully contains is dropped instead: the
        new prompt, stored after the pass, supersedes it."""
        if not self.entries or key != self.key:
            self.clear()
            return 0, None
        best, m = max(((i, self._common(e[0], ids[:-1])) for i, e in enumerate(self.entries)), key=lambda t: t[1])
        if m == 0:
            return 0, None
        stored, kv = self.entries[best]
        if m == len(stored):
            self.entries.pop(best)
        else:
            kv = _fork(kv)
            self.entries.append(self.entries.pop(best))  # most recently used last
        extra = kv.get_seq_length() - m
        if extra:
            kv.crop(-extra)  # drops the last `extra` positions
        return m, kv


def _fork(kv):
    """A cache object of its own over the same key/value tensors (no copy of the tensors)."""
    new = copy.copy(kv)
    new.layers = [copy.copy(layer) for layer in kv.layers]
    return new


def _croppable(kv) -> bool:
    """Only plain full-attention caches can be cropped and reused exactly (not sliding-window or
    linear-attention layers)."""
    from transformers.cache_utils import DynamicLayer
    return kv is not None and all(type(layer) is DynamicLayer for layer in getattr(kv, "layers", [None]))


def _gather(first: torch.Tensor, rows: torch.Tensor, cands: list[list[int]], starts: list[int]) -> list[float]:
    """Sum of candidate log-probs: token 0 from ``first`` (V,), token t from ``rows[starts[i] + t - 1]``."""
    scores = []
    for c, s in zip(cands, starts):
        total = first[c[0]].item()
        if len(c) > 1:
            idx = torch.arange(s, s + len(c) - 1)
            total += rows[idx, torch.tensor(c[1:])].sum().item()
        scores.append(total)
    return scores


@torch.no_grad()
def score_candidates(model, tokenizer, prompt: str, candidates: list[str], system_prompt: str | None = None,
                     method: str = "packed", cache: PrefixCache | None = None) -> list[float]:
    """Summed log-probability of each candidate answer (its tokens + end-of-turn) after ``prompt``.

    ``method="packed"`` (default): ONE forward pass. The prompt tokens not already in ``cache`` and every
    candidate (minus its last token, whose log-prob comes from the token before; leading tokens shared by
    several candidates, as a trie, run once) are packed into one row
    with a custom 4-D attention mask (each candidate sees the whole prompt and its own earlier tokens,
    never another candidate) and explicit position ids (each candidate starts right after the prompt).
    Only the last prompt position and the candidate positions go through the lm_head.

    ``method="batched"``: two passes. The prompt runs once; its KV cache is repeated n times and the n
    candidates (padded to length L) run as one batch (n, L).

    Both equal a naive full forward of ``prompt + candidate`` per candidate (up to float rounding; tests).
    """
    if method not in ("packed", "batched"):
        raise ValueError(f"score_candidates method = {method!r}: use 'packed' (one pass) or 'batched' (two passes)")
    prefix = chat_prefix_ids(tokenizer, prompt, system_prompt)
    cands = [answer_ids(tokenizer, prompt, c, prefix, system_prompt) for c in candidates]
    device = model.device
    key = PrefixCache.model_key(model) if cache is not None else ()
    m, kv = cache.take(prefix, key) if cache is not None else (0, None)
    suffix = prefix[m:]
    if method == "batched":
        out = model(input_ids=torch.tensor([suffix], device=device), past_key_values=kv, use_cache=True,
                    position_ids=torch.arange(m, len(prefix), device=device)[None], logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), -1)  # (V,)
        kv = out.past_key_values
        keep = [(layer.keys, layer.values) for layer in kv.layers] if _croppable(kv) else None
        n, width = len(cands), max(len(c) for c in cands)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        batch = torch.tensor([c + [pad] * (width - len(c)) for c in cands], device=device)  # (n, L)
        kv.batch_repeat_interleave(n)  # builds new tensors; `keep` still holds the batch-1 prompt cache
        # Right padding needs no mask: causal attention means real tokens never see the pads after them.
        logits = model(input_ids=batch, past_key_values=kv, use_cache=True).logits.float()  # (n, L, V)
        logp = torch.log_softmax(logits, -1).reshape(n * width, -1)
        scores = _gather(first, logp, cands, [i * width for i in range(n)])
        if keep is not None:
            for layer, (k, v) in zip(kv.layers, keep):
                layer.keys, layer.values = k, v
    else:
        # The candidates as a token trie: "raise 2.5" and "raise 100" share their "raise" node. Each node is
        # one packed token at position len(prefix) + depth that sees the prompt, its ancestors and itself.
        nodes: dict[tuple[int, ...], int] = {}  # candidate prefix -> node index
        tokens, parents, depths = [], [], []
        for c in cands:
            for t in range(1, len(c)):  # the last token is only scored, never fed
                if tuple(c[:t]) not in nodes:
                    nodes[tuple(c[:t])] = len(tokens)
                    tokens.append(c[t - 1])
                    parents.append(nodes.get(tuple(c[:t - 1]), -1))
                    depths.append(t - 1)
        s, p = len(suffix), len(prefix)
        q = s + len(tokens)
        dtype = model.get_input_embeddings().weight.dtype  # the hidden states' (and so the queries') dtype
        visible = torch.zeros(q, m + q, dtype=torch.bool)
        visible[:, :m] = True  # every row sees the cached prompt
        visible[:s, m:m + s] = torch.ones(s, s, dtype=torch.bool).tril()  # new prompt tokens: causal
        visible[s:, m:m + s] = True  # candidate tokens see the whole prompt
        for i, parent in enumerate(parents):
            visible[s + i, m + s + i] = True  # itself
            if parent >= 0:
                visible[s + i, m + s:m + q] |= visible[s + parent, m + s:m + q]  # and the parent's ancestors
        mask = torch.zeros(q, m + q, dtype=dtype).masked_fill_(~visible, torch.finfo(dtype).min)
        out = model(input_ids=torch.tensor([suffix + tokens], device=device),
                    position_ids=torch.tensor([list(range(m, p)) + [p + d for d in depths]], device=device),
                    attention_mask=mask[None, None].to(device), past_key_values=kv, use_cache=True,
                    logits_to_keep=q - s + 1)
        logp = torch.log_softmax(out.logits[0].float(), -1)  # row 0: last prompt token; row 1 + i: node i
        scores = []
        for c in cands:
            rows = [0] + [1 + nodes[tuple(c[:t])] for t in range(1, len(c))]
            scores.append(logp[torch.tensor(rows), torch.tensor(c)].sum().item())
        kv = out.past_key_values
        if _croppable(kv) and q > s:
            kv.crop(-(q - s))  # forget the candidates; keep the prompt for the next decision
    if cache is not None and _croppable(kv):
        cache.store(prefix, kv, key)
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
                 system_prompt: str | None = None, method: str = "packed", prefix_cache: bool = True):
        if mode not in MODES:
            raise ValueError(f"LLMPlayer mode = {mode!r}: must be one of {list(MODES)}")
        if temperature < 0:
            raise ValueError(f"LLMPlayer temperature = {temperature}: must be >= 0 (0 = greedy)")
        if method not in METHODS:
            raise ValueError(f"LLMPlayer method = {method!r}: must be one of {list(METHODS)} "
                             "('packed' = one forward pass, 'batched' = prompt pass + candidate batch)")
        self.model, self.tokenizer = model, tokenizer
        self.mode, self.temperature, self.style = mode, temperature, style
        self.max_new_tokens, self.keep_prompts = max_new_tokens, keep_prompts
        self.system_prompt = system_prompt  # must match the one used in training
        self.method = method
        self.cache = PrefixCache() if prefix_cache else None
        self._checked = method != "packed"
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
            scores = self.score(prompt, names)
            action = spot.candidates[pick(names, scores, self.temperature, self.rng)]
        else:
            raw = self.generate(prompt)
            action, status = self.parse_legal(raw, spot)
        decision = Decision(spot.spot_id, spot.street, prompt if self.keep_prompts else "", names, scores, str(action),
                            time.perf_counter() - start, raw, status)
        return action, decision

    def score(self, prompt: str, names: list[str]) -> list[float]:
        """Scores of the candidate answers (see ``score_candidates``), reusing recent prompts' caches.

        The first packed call is checked once against the two-pass method: a backend that ignores custom
        4-D attention masks (a fused inference kernel, say) would let candidates see each other. If the two
        disagree beyond float rounding, the player warns and uses the two-pass method from then on.
        """
        if not self._checked:
            self._checked = True
            batched = score_candidates(self.model, self.tokenizer, prompt, names, self.system_prompt, method="batched")
            try:
                packed = score_candidates(self.model, self.tokenizer, prompt, names, self.system_prompt, method="packed")
                worst = max(abs(a - b) for a, b in zip(packed, batched))
                problem = f"differs from two-pass scoring by {worst:.3g} nats"
            except Exception as exc:  # e.g. a fused kernel that refuses custom masks or position ids
                worst, problem = float("inf"), f"failed ({type(exc).__name__}: {exc})"
            half = self.model.get_input_embeddings().weight.dtype in (torch.float16, torch.bfloat16)
            tolerance = 1.5 if half else 1e-2  # summed log-probs; bf16 rounding alone moves them by up to ~0.7 here
            if worst > tolerance:
                warnings.warn(f"LLMPlayer: packed scoring {problem} on this backend (custom attention masks "
                              "unsupported?); using method='batched'", stacklevel=2)
                self.method = "batched"
        return score_candidates(self.model, self.tokenizer, prompt, names, self.system_prompt, method=self.method,
                                cache=self.cache)

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
