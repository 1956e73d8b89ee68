"""Exports are atomic (full disk, read-only folder, missing parent); wrong pairings, damaged files and
pickle files are refused before PEFT loads anything; trust_remote_code stays off unless asked for."""
import errno
import json
import shutil
import subprocess

import pytest
import safetensors.torch
import torch

from toolkit.export import ADAPTER_FILE, ExportError, check_export, check_pairing, load_adapters, save_adapters
from toolkit.guard import UnsafeFileError
from toolkit.lora import attach_lora
from toolkit.settings import LoraSettings, ModelSettings

PROMPTS = ["Color number 1?", "The pot is 3.5 chips."]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, tokenizer, folder): the tiny model with LoRA r=4 whose B matrices are random (so the adapter
    changes the logits), exported once for the module. Tests copy the folder before damaging it."""
    from toolkit.load import load_model

    model, tokenizer = load_model(ModelSettings(name="tiny", max_seq_length=128))
    model = attach_lora(model, LoraSettings(r=4, alpha=8))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    folder = save_adapters(model, tokenizer, tmp_path_factory.mktemp("export") / "adapter")
    return model, tokenizer, folder


@pytest.fixture
def copy(exported, tmp_path):
    return shutil.copytree(exported[2], tmp_path / "adapter")


def other_base(tmp_path, tokenizer, name: str, **changes):
    """A tiny Llama folder like the preset but with ``changes`` to its config (random weights, no training)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from toolkit.load import TINY_CONFIG

    folder = tmp_path / name
    LlamaForCausalLM(LlamaConfig(**{**TINY_CONFIG, **changes})).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def logits_of(model, tokenizer):
    from toolkit.export import logits

    return logits(model, tokenizer, PROMPTS)


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------- 2. atomic exports
def test_full_disk_while_writing_the_safetensors_leaves_the_old_export_intact(exported, tmp_path, monkeypatch):
    model, tokenizer, _ = exported
    target = save_adapters(model, tokenizer, tmp_path / "adapter")
    before = snapshot(target)
    calls = []

    def half_then_enospc(tensors, filename, metadata=None):  # what a full disk does: some bytes land, then ENOSPC
        data = safetensors.torch.save(tensors, metadata=metadata)
        with open(filename, "wb") as handle:
            handle.write(data[: len(data) // 2])
        calls.append(filename)
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr("peft.peft_model.safe_save_file", half_then_enospc)
    with pytest.raises(OSError, match=r"No space left on device: the disk filled up while writing .*adapter.*MiB free.*older export.*unchanged") as err:
        save_adapters(model, tokenizer, target)
    assert err.value.errno == errno.ENOSPC and calls, "the fake full disk was never hit: the test would prove nothing"
    assert snapshot(target) == before  # the previous export is byte-identical
    with pytest.raises(OSError, match="disk filled up"):
        save_adapters(model, tokenizer, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no .partial-* or .old-* left behind


def _try_readonly_mount(folder):
    """Bind-mount ``folder`` read-only onto itself (needs root and mount rights, e.g. a CI container)."""
    done = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if done.returncode:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode:
        subprocess.run(["umount", str(folder)])
        return False
    return True


@pytest.mark.parametrize("how", ["os.access says read-only", "real read-only mount"])
def test_read_only_target_folder_is_refused_naming_it_and_nothing_is_written(exported, tmp_path, monkeypatch, how):
    # Tests run as root, and root ignores permission bits (chmod 555 would not stop it). So either a real
    # read-only bind mount (EROFS, which stops root too) or, where mounting is not allowed, os.access
    # patched to answer as it does for a read-only folder. The code checks os.access first, then maps
    # EROFS/EACCES from the kernel to the same error.
    model, tokenizer, _ = exported
    folder = tmp_path / "shared"
    folder.mkdir()
    if how == "real read-only mount":
        if not _try_readonly_mount(folder):
            pytest.skip("cannot bind-mount read-only here (needs root with mount rights)")
    else:
        real = __import__("os").access
        monkeypatch.setattr("toolkit.export.os.access", lambda p, mode: False if str(p) == str(folder) else real(p, mode))
    try:
        with pytest.raises(ExportError, match=f"cannot write to {folder}.*read-only"):
            save_adapters(model, tokenizer, folder / "adapter")
        assert list(folder.iterdir()) == []
    finally:
        if how == "real read-only mount":
            subprocess.run(["umount", str(folder)], check=True)
    # the kernel's answer, when os.access was wrong (e.g. a network share), is reported the same way
    monkeypatch.undo()
    real_mkdir = type(folder).mkdir

    def erofs(self, *a, **k):
        if self.name.startswith(".partial-"):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(type(folder), "mkdir", erofs)
    with pytest.raises(OSError, match=f"cannot write to {folder} \\(Read-only file system\\); nothing was written"):
        save_adapters(model, tokenizer, folder / "adapter")
    assert list(folder.iterdir()) == []


def test_missing_parent_is_created_and_a_blocked_parent_is_named(exported, tmp_path):
    model, tokenizer, _ = exported
    target = save_adapters(model, tokenizer, tmp_path / "runs" / "new" / "adapter")
    assert check_export(target)["kind"] == "adapters" and (target / ADAPTER_FILE).is_file()
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(ExportError, match=f"cannot create the output folder {tmp_path / 'blocker' / 'sub'}"):
        save_adapters(model, tokenizer, tmp_path / "blocker" / "sub" / "adapter")
    assert (tmp_path / "blocker").read_text() == "a file, not a folder"


# --------------------------------------------------------------------------- 3. wrong pairings
def test_the_right_base_passes_by_default_and_by_name_with_identical_logits(exported):
    model, tokenizer, folder = exported
    manifest = check_pairing(folder)
    assert manifest["base_model"] == "tiny" and manifest["hidden_size"] == 64 and ADAPTER_FILE in manifest["files"]
    want = logits_of(model, tokenizer)
    for base in (None, "tiny"):
        reloaded, rtok = load_adapters(folder, 128, base=base)
        assert torch.equal(logits_of(reloaded, rtok), want), base


def test_a_different_base_model_is_refused_naming_both(exported, tmp_path, copy):
    _, tokenizer, _ = exported
    wide = other_base(tmp_path, tokenizer, "wide-base", hidden_size=32, head_dim=8)
    with pytest.raises(ExportError) as err:
        load_adapters(copy, 128, base=str(wide))
    text = str(err.value)
    assert "trained on base 'tiny' (llama, hidden_size 64, 2 layers" in text
    assert f"base to load is '{wide}' (llama, hidden_size 32" in text and "hidden_size differ" in text
    # the same when adapter_config.json itself points at another base (what Unsloth would load)
    config = json.loads((copy / "adapter_config.json").read_text())
    (copy / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(wide)}))
    with pytest.raises(ExportError, match=f"trained on base 'tiny'.*base to load is '{wide}'"):
        load_adapters(copy, 128)
    big_vocab = other_base(tmp_path, tokenizer, "big-vocab", vocab_size=49280)
    with pytest.raises(ExportError, match="vocab 49152.*vocab 49280.*vocab_size differ"):
        check_pairing(copy, str(big_vocab))


def test_a_base_with_other_layer_shapes_is_refused_naming_the_module(exported, tmp_path, copy):
    _, tokenizer, _ = exported
    narrow_mlp = other_base(tmp_path, tokenizer, "narrow-mlp", intermediate_size=96)  # same hidden/layers/vocab
    with pytest.raises(ExportError) as err:
        check_pairing(copy, str(narrow_mlp))
    text = str(err.value)
    assert "does not fit base" in text and "mlp." in text and "96" in text and "128" in text, text


def test_a_replaced_tokenizer_is_refused(exported, copy):
    _, tokenizer, _ = exported
    from transformers import AutoTokenizer

    grown = AutoTokenizer.from_pretrained(str(copy))
    grown.add_tokens(["<my-new-token>"])
    grown.save_pretrained(copy)
    with pytest.raises(ExportError, match="has 49153 tokens but the adapter was trained with 49152"):
        load_adapters(copy, 128)


@pytest.mark.parametrize("damage", ["truncated", "bad header", "flipped data byte"])
def test_a_damaged_adapter_file_is_named_before_peft_reads_it(copy, monkeypatch, damage):
    from unsloth import FastLanguageModel

    file = copy / ADAPTER_FILE
    data = bytearray(file.read_bytes())
    if damage == "truncated":
        data = data[: len(data) * 2 // 3]
    elif damage == "bad header":
        data[8:12] = b"\xff\xfe{{"
    else:
        data[-5] ^= 0xFF  # same size, valid header: only the recorded sha256 can tell
    file.write_bytes(bytes(data))
    monkeypatch.setattr(FastLanguageModel, "from_pretrained", lambda *a, **k: pytest.fail("loaded a damaged adapter"))
    with pytest.raises(UnsafeFileError, match=str(file)) as err:
        load_adapters(copy, 128)
    assert {"truncated": "truncated", "bad header": "not valid JSON", "flipped data byte": "modified or corrupted"}[damage] in str(err.value)


# --------------------------------------------------------------------------- 4. untrusted files
def test_pickle_only_adapter_is_refused_unless_allowed(exported, copy):
    model, tokenizer, _ = exported
    tensors = safetensors.torch.load_file(copy / ADAPTER_FILE)
    torch.save(tensors, copy / "adapter_model.bin")
    (copy / ADAPTER_FILE).unlink()
    with pytest.raises(UnsafeFileError) as err:
        load_adapters(copy, 128)
    assert "adapter_model.bin" in str(err.value) and "arbitrary code" in str(err.value) and "allow_pickle=True" in str(err.value)
    reloaded, rtok = load_adapters(copy, 128, allow_pickle=True)  # the explicit opt-in works, and exactly
    assert torch.equal(logits_of(reloaded, rtok), logits_of(model, tokenizer))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "model.pkl"])
def test_a_folder_of_pickles_is_refused_with_the_reason(tmp_path, name):
    from toolkit.export import load_merged

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / name).write_bytes(b"\x80\x04K\x01.")  # a real (harmless) pickle
    for load in (load_adapters, load_merged):
        with pytest.raises(UnsafeFileError, match=f"only pickle files \\['{name}'\\].*arbitrary code"):
            load(tmp_path / "m", 128)


def test_trust_remote_code_is_passed_as_false_unless_turned_on(monkeypatch, copy):
    from unsloth import FastLanguageModel

    from toolkit.load import load_model

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code", "not passed"))
        raise RuntimeError("stop here: only the arguments matter")

    monkeypatch.setattr(FastLanguageModel, "from_pretrained", spy)
    assert ModelSettings().trust_remote_code is False
    for settings in (ModelSettings(name="tiny"), ModelSettings(name="tiny", trust_remote_code=True)):
        with pytest.raises((RuntimeError, ValueError)):
            load_model(settings)
    with pytest.raises(RuntimeError, match="stop here"):
        load_adapters(copy, 128)
    assert seen == [False, True, False]
