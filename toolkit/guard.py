"""What the toolkit refuses to load, and why: pickle files, and truncated or altered safetensors.

Pickle (``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``, ``*.ckpt``) is Python's object format; loading one
can run any code its author put in it. Safetensors is a JSON header plus raw tensor bytes and runs
nothing, so adapters and model weights load from safetensors only unless the caller passes
``allow_pickle=True`` for a file it trusts.

A safetensors file starts with an 8-byte little-endian header length ``n``, then ``n`` bytes of JSON
that give every tensor's dtype, shape and ``[begin, end)`` byte range in the data that follows. A file
cut short by a full disk or a killed copy is caught by comparing the header's last ``end`` with the
file size; a file altered in place (same size) is caught by the sha256 recorded at export time.
"""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# Trainer state in a checkpoint (not weights); transformers reads these with torch.load(weights_only=True).
TRAINER_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth", "training_args.bin")
WHY_PICKLE = ("pickle files can run arbitrary code when they are loaded (unpickling executes whatever the file says), "
              "so the toolkit loads weights from .safetensors only")


class UnsafeFileError(ValueError):
    """A pickle file where safetensors were expected, or a safetensors file that is truncated or corrupt."""


def pickle_files(folder: str | Path) -> list[Path]:
    """Pickle-format weight files directly inside ``folder`` (not counting Trainer's own state files)."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix in PICKLE_SUFFIXES and p.name not in TRAINER_STATE and p.is_file())


def refuse_pickle(folder: str | Path, weights: str = "*.safetensors", allow_pickle: bool = False) -> None:
    """Raise unless ``folder`` holds ``weights`` (a .safetensors name or glob), or pickle is explicitly allowed.

    Args:
        weights: the safetensors file(s) that must be there, e.g. ``"adapter_model.safetensors"``.
    """
    folder = Path(folder)
    if allow_pickle or (folder.is_dir() and any(folder.glob(weights))):
        return
    found = [p.name for p in pickle_files(folder)] if folder.is_dir() else []
    if found:
        raise UnsafeFileError(
            f"{folder} has no {weights}, only pickle files {found}: {WHY_PICKLE}. Convert them to safetensors "
            "(load once where you trust the file, then save_pretrained(..., safe_serialization=True)), or pass "
            "allow_pickle=True if you trust whoever wrote them.")
    raise FileNotFoundError(f"{folder / weights} does not exist; the folder holds {sorted(p.name for p in folder.iterdir()) if folder.is_dir() else 'nothing'}")


def read_header(path: str | Path) -> dict:
    """The safetensors JSON header of ``path`` (``{name: {"dtype", "shape", "data_offsets"}}``), after checking
    that the file is as long as the header says. Reads only the header, never the tensors."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise UnsafeFileError(f"{path} is {size} bytes: too short to be a safetensors file (truncated); export it again")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise UnsafeFileError(f"{path}: header says {n} bytes of JSON but the file has only {size} bytes "
                                  "(truncated, e.g. by a full disk); export it again")
        try:
            header = json.loads(handle.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UnsafeFileError(f"{path}: the safetensors header is not valid JSON ({exc}); the file is corrupt, export it again") from exc
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = max((v["data_offsets"][1] for v in tensors.values()), default=0)
    if 8 + n + end != size:
        raise UnsafeFileError(f"{path}: header describes {8 + n + end} bytes but the file has {size} "
                              f"({'truncated' if size < 8 + n + end else 'extra bytes'}); export it again")
    return tensors


def shapes(path: str | Path) -> dict[str, list[int]]:
    """Tensor name -> shape, from the header alone."""
    return {k: v["shape"] for k, v in read_header(path).items()}


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(folder: str | Path) -> dict[str, dict]:
    """``{file: {"bytes", "sha256"}}`` for every .safetensors file in ``folder`` (recorded in export manifests)."""
    return {p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in sorted(Path(folder).glob("*.safetensors"))}


def check_fingerprint(folder: str | Path, expected: dict[str, dict]) -> None:
    """Every file recorded at export time is still there, with a valid header, the same size and sha256."""
    folder = Path(folder)
    for name, want in expected.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; the export recorded it ({want['bytes']} bytes). Export again")
        read_header(path)
        if path.stat().st_size != want["bytes"] or sha256(path) != want["sha256"]:
            raise UnsafeFileError(f"{path} differs from the file exported ({path.stat().st_size} bytes now, "
                                  f"{want['bytes']} then; sha256 differs): it was modified or corrupted. Export again")
