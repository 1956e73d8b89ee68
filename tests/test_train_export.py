"""Training moves only LoRA weights and lowers the loss; exports reload exactly and atomically."""
import json
import os

import pytest
import torch

from toolkit.data import encode, prepare
from toolkit.export import (MANIFEST, MERGED_TOLERANCE, ExportError, check_export, load_adapters, load_merged,
                            save_adapters, save_merged, size_report, verify)
from toolkit.infer import chat, stream_chat
from toolkit.lora import attach_lora
from toolkit.settings import LoraSettings, TrainSettings
from toolkit.train import build_trainer, shared_prefix_length, train


@pytest.fixture
def trained(tiny, color_rows, tmp_path):
    model, tokenizer = tiny
    base = {k: v.clone() for k, v in model.state_dict().items()}
    model = attach_lora(model, LoraSettings(r=8, alpha=16))
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    data, _ = prepare(color_rows, tokenizer, 128)
    settings = TrainSettings(max_steps=20, lr=5e-3, batch_size=8, warmup_steps=0, output_dir=str(tmp_path / "run"))
    result = train(model, tokenizer, data, settings, max_seq_length=128)
    return model, tokenizer, base, lora_before, result, tmp_path


def test_training_changes_only_lora_and_loss_falls(trained):
    model, _, base, lora_before, result, tmp_path = trained
    after = {k.replace(".base_layer", ""): v for k, v in model.get_base_model().state_dict().items() if "lora_" not in k}
    assert set(after) == set(base)
    for key, value in base.items():
        assert torch.equal(after[key], value), f"base weight {key} changed"
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, lora_before[n])]
    assert len(changed) == len(lora_before)
    first = sum(loss for _, loss in result.train_loss[:3]) / 3
    last = sum(loss for _, loss in result.train_loss[-3:]) / 3
    assert last < first - 0.3, result.train_loss
    assert result.steps == 20 and result.trained_tokens > 0 and result.tokens_per_s > 0 and result.peak_memory_mb > 0
    # train.cpu_compile (default): the decoder layers trained compiled, and are eager again for inference
    assert result.compiled
    assert not [n for n, m in model.named_modules() if getattr(m, "_compiled_call_impl", None) is not None]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["train_loss"][0][1] == pytest.approx(result.train_loss[0][1])


def test_adapter_round_trip_is_exact_and_merged_within_tolerance(trained):
    model, tokenizer, _, _, _, tmp_path = trained
    path = save_adapters(model, tokenizer, tmp_path / "adapter", LoraSettings(r=8, alpha=16))
    assert {"adapter_model.safetensors", "adapter_config.json", "settings.json", MANIFEST} <= set(os.listdir(path))
    reloaded, _ = load_adapters(path, 128)
    exact = verify(model, reloaded, tokenizer)
    assert exact.passed and exact.max_abs_diff == 0.0
    merged_path = save_merged(model, tokenizer, tmp_path / "merged")
    merged, _ = load_merged(merged_path, 128)
    close = verify(model, merged, tokenizer, tolerance=MERGED_TOLERANCE)
    assert close.passed and close.argmax_agreement > 0.9
    sizes = size_report(path, check_export(path)["base_model_path"])
    assert sizes.adapter_bytes < sizes.full_model_bytes and sizes.ratio > 10
    assert isinstance(chat(reloaded, tokenizer, "Color number 1?", max_new_tokens=3), str)
    assert "".join(stream_chat(reloaded, tokenizer, "Color number 1?", max_new_tokens=3)) == chat(
        reloaded, tokenizer, "Color number 1?", max_new_tokens=3)


def test_failed_export_leaves_nothing_that_looks_valid(trained, monkeypatch):
    model, tokenizer, _, _, _, tmp_path = trained

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tokenizer, "save_pretrained", crash)
    with pytest.raises(OSError, match="No space"):
        save_adapters(model, tokenizer, tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()
    assert not list(tmp_path.glob(".partial-*"))


def test_incomplete_export_is_refused(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "adapter_config.json").write_text("{}")
    with pytest.raises(ExportError, match="not a complete toolkit export"):
        check_export(tmp_path / "half")
    with pytest.raises(FileNotFoundError, match="export adapters first"):
        check_export(tmp_path / "missing")


def test_masking_matches_trl_and_keeps_only_assistant_tokens(tiny, color_rows, tmp_path):
    model, tokenizer = tiny
    model = attach_lora(model, LoraSettings(r=4))
    data, _ = prepare(color_rows[:8], tokenizer, 128)
    trainer = build_trainer(model, tokenizer, data, TrainSettings(output_dir=str(tmp_path)), max_seq_length=128)
    for ours, row in zip(data, trainer.train_dataset):
        enc = encode(tokenizer, ours, 128)
        assert enc["input_ids"] == row["input_ids"]
        trl_mask = [int(label != -100) for label in row["labels"]] if "labels" in row else row["completion_mask"]
        assert enc["completion_mask"] == trl_mask
        trained_text = tokenizer.decode([t for t, m in zip(enc["input_ids"], enc["completion_mask"]) if m])
        assert trained_text.startswith(ours["completion"][0]["content"])
        assert "Color number" not in trained_text


def test_for_play_merges_adapters_into_a_plain_model_that_scores_like_the_adapters(trained):
    """eval.merge_adapters: the fine-tuned model plays as W0 + (alpha/r)·B·A in one matrix per layer."""
    import copy

    from toolkit.pipeline import RunSettings, for_play
    from toolkit.poker.player import score_candidates

    model, tokenizer, *_ = trained
    row = {"instruction": "Color number 1?", "candidates": ["red", "green", "blue", "pink"]}  # what it was trained on
    want = score_candidates(model, tokenizer, row["instruction"], row["candidates"])
    with model.disable_adapter():
        bare = score_candidates(model, tokenizer, row["instruction"], row["candidates"])
    assert max(abs(a - b) for a, b in zip(bare, want)) > 0.5  # the adapters matter, so a lost merge would show
    keep = RunSettings()
    keep.eval.merge_adapters = False
    assert for_play(keep, model) is model
    merged = for_play(RunSettings(), copy.deepcopy(model))
    assert not hasattr(merged, "peft_config") and not any("lora_" in n for n, _ in merged.named_parameters())
    got = score_candidates(merged, tokenizer, row["instruction"], row["candidates"])
    assert got == pytest.approx(want, abs=0.25)  # bf16 rounding of the merged weights (MERGED_TOLERANCE)


def test_compiled_training_is_reproducible_bit_for_bit(color_rows, tmp_path):
    """train.cpu_compile keeps the promise of reproducible runs: same seed, same LoRA weights, twice."""
    from toolkit.load import load_model
    from toolkit.settings import ModelSettings

    weights = []
    for run in range(2):
        model, tokenizer = load_model(ModelSettings(name="tiny", max_seq_length=128))
        model = attach_lora(model, LoraSettings(r=8, alpha=16))
        data, _ = prepare(color_rows, tokenizer, 128)
        result = train(model, tokenizer, data, TrainSettings(max_steps=6, lr=5e-3, batch_size=8, warmup_steps=0,
                                                             output_dir=str(tmp_path / f"run{run}")), max_seq_length=128)
        assert result.compiled
        weights.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][n], weights[1][n]) for n in weights[0])
    assert all(w.abs().sum() > 0 for n, w in weights[0].items() if "lora_B" in n)  # B left zero: it really trained


def lora_with_random_b(model):
    """LoRA r=8 with B drawn at random: B = 0 at init would hide any error in the adapter path."""
    model = attach_lora(model, LoraSettings(r=8, alpha=16))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def test_compiled_layers_compute_the_eager_loss_and_gradients(tiny, color_rows):
    """train.cpu_compile changes kernels, not maths: one batch, same loss and LoRA gradients (bf16 rounding)."""
    from toolkit.train import compile_for_training, uncompile

    model, tokenizer = tiny
    model = lora_with_random_b(model)
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in color_rows[:4]]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    model.train()

    def loss_and_grads():
        model.zero_grad()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten().float() for p in model.parameters() if p.requires_grad])

    eager = loss_and_grads()
    assert compile_for_training(model, TrainSettings())
    compiled = loss_and_grads()
    uncompile(model)
    assert compiled[0] == pytest.approx(eager[0], rel=1e-2)
    assert torch.nn.functional.cosine_similarity(compiled[1], eager[1], dim=0) > 0.99
    assert eager[1].norm() > 0 and compiled[1].norm() == pytest.approx(eager[1].norm().item(), rel=0.05)


@pytest.mark.parametrize("compiled", [False, True])
def test_shared_prefix_batches_give_the_plain_loss_and_gradients(tiny, compiled):
    """train.shared_prefix runs the batch's common prompt tokens once: same loss and LoRA gradients as
    running every row in full, on real poker rows (whose system turn + header are shared)."""
    from toolkit.train import compile_for_training, shared_prefix_length, uncompile

    model, tokenizer = tiny
    model = lora_with_random_b(model)
    rows = [json.loads(line) for line in open("data/poker/train.jsonl")][:8]
    data, _ = prepare(rows, tokenizer, 384, system_prompt="You are a poker player. Answer with one action.")
    trainers = {shared: build_trainer(model, tokenizer, data, TrainSettings(batch_size=8, shared_prefix=shared,
                                                                             output_dir="/tmp/unused"), max_seq_length=384)
                for shared in (False, True)}
    batch = next(iter(trainers[True].get_train_dataloader()))
    n = shared_prefix_length(batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert n >= 40  # system turn + fixed header
    model.train()
    if compiled:
        assert compile_for_training(model, TrainSettings())

    def loss_and_grads(trainer):
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten().float() for p in model.parameters() if p.requires_grad])

    plain, shared = loss_and_grads(trainers[False]), loss_and_grads(trainers[True])
    if compiled:
        uncompile(model)
    assert trainers[True].shared_tokens == n * 7  # the prefix really was shared (7 rows not recomputed)
    assert shared[0] == pytest.approx(plain[0], rel=1e-3)
    assert torch.nn.functional.cosine_similarity(shared[1], plain[1], dim=0) > 0.999
    assert plain[1].norm() > 0 and shared[1].norm() == pytest.approx(plain[1].norm().item(), rel=1e-2)


def test_shared_prefix_length_leaves_every_labelled_token_and_its_predictor_to_the_rows():
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 50, 60, 0],
                        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 51, 61, 62]])
    mask = (ids != 0).long()
    labels = torch.full_like(ids, -100)
    assert shared_prefix_length(ids, mask, labels) == 11  # stops at the first differing token
    labels[:, 10] = ids[:, 10]  # a labelled token inside the common part: neither it nor its predictor is shared
    assert shared_prefix_length(ids, mask, labels) == 9
    labels[:, 3] = ids[:, 3]
    assert shared_prefix_length(ids, mask, labels) == 0  # 2 shareable tokens are not worth a separate pass
    same = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] * 2)
    assert shared_prefix_length(same, torch.ones_like(same), torch.full_like(same, -100)) == 9  # one token left per row


def test_shared_prefix_falls_back_to_full_rows_when_the_backend_gets_it_wrong(tiny, monkeypatch):
    """A backend whose training kernels ignore a KV cache must not train on wrong losses: the first batch
    compares the shared pass with full rows, warns and trains on full rows from then on."""
    model, tokenizer = tiny
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(50)  # sharp logits: the random tiny model's loss now depends on context
    model = attach_lora(model, LoraSettings(r=8, alpha=16))
    rows = [json.loads(line) for line in open("data/poker/train.jsonl")][:8]
    data, _ = prepare(rows, tokenizer, 384, system_prompt="You are a poker player. Answer with one action.")
    plain = build_trainer(model, tokenizer, data, TrainSettings(batch_size=8, shared_prefix=False, output_dir="/tmp/unused"), max_seq_length=384)
    trainer = build_trainer(model, tokenizer, data, TrainSettings(batch_size=8, output_dir="/tmp/unused"), max_seq_length=384)
    batch = next(iter(trainer.get_train_dataloader()))
    model.train()
    want = plain.compute_loss(model, dict(batch)).item()
    real_prefix = type(trainer)._prefix

    def broken(model, ids, n):  # a cache holding the wrong keys/values
        cache = real_prefix(model, ids, n)
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys.flip(-2), 10 * torch.randn_like(layer.values)
        return cache

    monkeypatch.setattr(type(trainer), "_prefix", staticmethod(broken))
    with pytest.warns(UserWarning, match="shared-prefix loss .* differs"):
        got = trainer.compute_loss(model, dict(batch)).item()
    assert trainer.shared_prefix_ok is False and trainer.shared_tokens == 0
    assert got == pytest.approx(want, rel=1e-4)
    monkeypatch.setattr(type(trainer), "_prefix", staticmethod(real_prefix))
    ok = build_trainer(model, tokenizer, data, TrainSettings(batch_size=8, output_dir="/tmp/unused"), max_seq_length=384)
    assert ok.compute_loss(model, dict(batch)).item() == pytest.approx(want, rel=1e-3)
    assert ok.shared_prefix_ok is True and ok.shared_tokens > 0
