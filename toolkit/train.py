"""Step 4 — train: wraps TRL's ``SFTTrainer``/``SFTConfig`` (Unsloth patches both on import).

``train`` maps our ``TrainSettings`` onto ``SFTConfig`` one-to-one, runs the trainer with its tqdm
progress bar, and returns what a learner wants to see afterwards: the loss/eval history, runtime,
trained tokens, tokens/s and peak memory. The history is saved as ``history.json`` in ``output_dir``.

Resuming (``resume=True``, CLI ``train --resume``) continues from the newest *complete* ``checkpoint-N``
(a run killed while saving leaves an incomplete one, which is skipped with a warning). The Trainer
restores the LoRA weights, AdamW moments, LR schedule, RNG states and the data position, so the
resumed run trains steps N+1.. exactly once and ends bit-identical to an uninterrupted run on CPU
(``tests/test_reliability_train.py``). Checkpoint weights load from safetensors only; the optimizer,
scheduler and RNG files are torch pickles that transformers reads with ``torch.load(weights_only=True)``,
an unpickler that only rebuilds tensors and plain containers and refuses to run code.
"""
from __future__ import annotations

import json
import os
import resource
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.guard import UnsafeFileError, read_header, refuse_pickle
from toolkit.settings import TrainSettings


@dataclass
class TrainResult:
    output_dir: str  # where checkpoints and history.json were written
    steps: int  # optimizer updates done
    train_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) as logged
    eval_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, validation loss)
    runtime_s: float = 0.0  # wall time of trainer.train()
    trained_tokens: int = 0  # non-padding tokens that went through forward+backward
    tokens_per_s: float = 0.0  # trained_tokens / runtime_s
    peak_memory_mb: float = 0.0  # peak RSS on CPU, torch.cuda.max_memory_allocated on GPU
    memory_kind: str = "cpu_rss"  # which of the two peak_memory_mb is
    log_history: list[dict] = field(default_factory=list)  # the trainer's raw log
    resumed_from: str | None = None  # checkpoint folder this run continued from
    steps_run: list[int] = field(default_factory=list)  # global steps completed by this call (N+1.. when resumed)
    compiled: bool = False  # decoder layers ran torch.compiled during training (train.cpu_compile on CPU)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- peak memory
def _reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    try:  # Linux: writing 5 resets VmHWM (peak RSS), so the figure covers training only
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_memory_mb() -> tuple[float, str]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, "cpu_rss"
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_rss"


# --------------------------------------------------------------------------- config
def sft_config(settings: TrainSettings, max_seq_length: int, has_eval: bool, gradient_checkpointing: bool = False):
    """Our settings -> TRL's ``SFTConfig``. Every other SFTConfig field keeps TRL's default."""
    from trl import SFTConfig

    eval_every = settings.eval_steps if (has_eval and settings.eval_steps) else 0
    return SFTConfig(
        output_dir=settings.output_dir,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.lr,
        max_steps=settings.max_steps if settings.max_steps > 0 else -1,
        num_train_epochs=settings.epochs,
        warmup_steps=settings.warmup_steps,
        lr_scheduler_type=settings.scheduler,
        weight_decay=settings.weight_decay,
        logging_steps=settings.logging_steps,
        eval_strategy="steps" if eval_every else "no",
        eval_steps=eval_every or None,
        save_strategy="steps" if settings.save_steps else "no",
        save_steps=settings.save_steps or 500,
        seed=settings.seed,
        data_seed=settings.seed,
        max_length=max_seq_length,
        completion_only_loss=settings.completion_only_loss,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        gradient_checkpointing=gradient_checkpointing,
        report_to="none",
        dataset_num_proc=None,
        disable_tqdm=False,
    )


# --------------------------------------------------------------------------- shared prefix
MIN_SHARED_PREFIX = 8  # tokens; below this a separate prefix pass costs more than it saves


def shared_prefix_length(input_ids, attention_mask, labels) -> int:
    """How many leading tokens every row of a batch can share: the same ids, no padding, and no loss on
    them or on the token right after (that token's prediction comes from the prefix's last position,
    which the shared pass does not send to the LM head). 0 when there is nothing worth sharing."""
    import torch

    same = (input_ids == input_ids[:1]).all(0) & attention_mask.bool().all(0) & (labels == -100).all(0)
    n = int(torch.cumprod(same.int(), 0).sum())
    n = min(n, input_ids.shape[1] - 1)  # every row keeps at least one token of its own
    while n > 0 and not bool((labels[:, n] == -100).all()):
        n -= 1
    return n if n >= MIN_SHARED_PREFIX else 0


def _backbone(model):
    """The decoder stack without the LM head (``LlamaModel`` inside ``LlamaForCausalLM``), under any PEFT wrapper."""
    owner = _decoder_owner(model)
    return getattr(owner, owner.base_model_prefix)


def _trainer_class(shared_prefix: bool):
    """``SFTTrainer`` (Unsloth-patched), or a subclass that runs each batch's shared prompt prefix once.

    Chat-formatted rows start with the same tokens (the system turn, the task's fixed header): the
    subclass runs those once, on one row, keeps their keys/values with gradients, broadcasts them to
    the batch as a KV cache and runs only the rest of every row through the model. Same loss, same
    gradients (up to float rounding: each row attends to the very same prefix keys/values, and the
    prefix receives the sum of every row's gradient), fewer FLOPs. Evaluation keeps the plain path.
    """
    from trl import SFTTrainer

    if not shared_prefix:
        return SFTTrainer

    class SharedPrefixSFTTrainer(SFTTrainer):
        shared_tokens = 0  # prompt tokens not recomputed thanks to sharing, over the run (bench/train_shortcuts.py prints it)
        shared_prefix_ok = None  # None until the first shareable batch is checked; False = fell back to full rows

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ids, mask, labels = inputs.get("input_ids"), inputs.get("attention_mask"), inputs.get("labels")
            if (not model.training or ids is None or mask is None or labels is None or ids.shape[0] < 2
                    or "position_ids" in inputs or self.accelerator.num_processes > 1):  # DDP must see the full forward
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            n = shared_prefix_length(ids, mask, labels) if self.shared_prefix_ok is not False else 0
            if n and self.shared_prefix_ok is None:
                self.shared_prefix_ok = self._check(model, ids, mask, labels, n)
            if not n or not self.shared_prefix_ok:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            rest = {k: (v[:, n:] if k != "attention_mask" and hasattr(v, "shape") and v.shape[:2] == ids.shape else v)
                    for k, v in inputs.items()}
            rest["past_key_values"] = self._prefix(model, ids, n)  # the mask stays full length: prefix + rest
            self.shared_tokens += n * (ids.shape[0] - 1)
            return super().compute_loss(model, rest, return_outputs, num_items_in_batch)

        @staticmethod
        def _prefix(model, ids, n):
            """The first ``n`` tokens of row 0 run once; their keys/values (with gradients) viewed as every row's."""
            cache = _backbone(model)(input_ids=ids[:1, :n], use_cache=True).past_key_values
            for layer in cache.layers:
                layer.keys = layer.keys.expand(ids.shape[0], -1, -1, -1)
                layer.values = layer.values.expand(ids.shape[0], -1, -1, -1)
            return cache

        def _check(self, model, ids, mask, labels, n) -> bool:
            """Once per run: the shared pass must give the full rows' loss (a backend whose fused kernels
            ignore a KV cache while training would not); otherwise warn and train on full rows."""
            import torch

            try:
                with torch.no_grad():
                    full = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss.item()
                    shared = model(input_ids=ids[:, n:], attention_mask=mask, labels=labels[:, n:], use_cache=False,
                                   past_key_values=self._prefix(model, ids, n)).loss.item()
            except Exception as exc:  # noqa: BLE001 - any failure means: do not use the shortcut
                warnings.warn(f"train.shared_prefix: the shared-prefix pass failed here ({type(exc).__name__}: {exc}); "
                              "training on full rows. Set train.shared_prefix=false to silence this.", stacklevel=2)
                return False
            if abs(shared - full) > 5e-3 * max(abs(full), 1e-3):  # float32 here: losses agree to 4 decimals (bench); bf16 unmeasured
                warnings.warn(f"train.shared_prefix: the shared-prefix loss {shared:.5f} differs from the full rows' "
                              f"{full:.5f} on this backend; training on full rows. Set train.shared_prefix=false to "
                              "silence this.", stacklevel=2)
                return False
            return True

    return SharedPrefixSFTTrainer


def build_trainer(model, tokenizer, train_data, settings: TrainSettings, eval_data=None,
                  max_seq_length: int = 512, callbacks=None):
    """The configured ``SFTTrainer`` (useful on its own to inspect TRL's tokenized dataset)."""
    SFTTrainer = _trainer_class(settings.shared_prefix)
    checkpointing = bool(getattr(model, "is_gradient_checkpointing", False))
    return SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=train_data,
        eval_dataset=eval_data,
        args=sft_config(settings, max_seq_length, eval_data is not None, checkpointing),
        callbacks=callbacks,
    )


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None. transformers writes trainer_state.json last."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (the run was killed while saving it)"
    try:
        json.loads(state.read_text())
    except json.JSONDecodeError:
        return "trainer_state.json is cut short"
    for name in ("optimizer.pt", "scheduler.pt"):
        if not (folder / name).is_file():
            return f"no {name}"
    weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        try:
            read_header(weights)
        except UnsafeFileError as exc:
            return str(exc)
    return None


def last_checkpoint(output_dir: str | Path, allow_pickle: bool = False) -> Path | None:
    """The newest complete ``checkpoint-N`` folder under output_dir (incomplete ones skipped, with a warning), or None."""
    found = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    for folder in reversed(found):
        why = checkpoint_problem(folder)
        if why is None:
            refuse_pickle(folder, "*.safetensors", allow_pickle)
            return folder
        warnings.warn(f"skipping incomplete checkpoint {folder}: {why}", stacklevel=2)
    return None


def _step_recorder(steps: list[int]):
    """A callback appending every global step the trainer completes (proves none is lost or repeated)."""
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    return StepRecorder()


def _decoder_owner(model):
    """The transformers model whose ``base_model_prefix`` holds the decoder ``layers`` (under any PEFT wrapper)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def compile_for_training(model, settings: TrainSettings) -> bool:
    """On CPU, ``torch.compile`` (Inductor C++) each decoder layer, as Unsloth does for
    ``UNSLOTH_CPU_COMPILE=1``; True if compiled. Compiled layers are ~1.3x faster per training step here,
    but inference with a KV cache recompiles for every new length, so ``train`` undoes it afterwards."""
    owner = _decoder_owner(model)
    if not settings.cpu_compile or next(model.parameters()).device.type != "cpu":
        return False
    if getattr(owner, "_unsloth_cpu_compiled", False):
        return True  # the user set UNSLOTH_CPU_COMPILE=1 and Unsloth already compiled at load/attach time
    from unsloth_zoo.cpu.loader import _compile_layers, _cpu_compile_unavailable

    reason = _cpu_compile_unavailable()
    if reason is not None:
        warnings.warn(f"train.cpu_compile = true ignored, training eagerly: torch.compile cannot build CPU kernels "
                      f"here ({reason}). Set train.cpu_compile=false to silence this.", stacklevel=3)
        return False
    if not _compile_layers(owner):
        return False
    owner._unsloth_cpu_compiled = True
    return True


def uncompile(model) -> None:
    """Back to eager modules (what ``nn.Module.compile`` set up is dropped); weights are untouched."""
    owner = _decoder_owner(model)
    for module in owner.modules():
        if getattr(module, "_compiled_call_impl", None) is not None:
            module._compiled_call_impl = None
    owner._unsloth_cpu_compiled = False


def train(model, tokenizer, train_data, settings: TrainSettings | None = None, eval_data=None,
          max_seq_length: int = 512, resume: bool = False, callbacks=None, allow_pickle: bool = False) -> TrainResult:
    """Fine-tune ``model`` (with LoRA attached) on prompt/completion data; return a ``TrainResult``.

    Args:
        train_data / eval_data: HF Datasets from ``toolkit.data.prepare``.
        resume: continue from the last complete ``checkpoint-N`` in ``settings.output_dir`` (needs save_steps > 0).
        allow_pickle: accept a checkpoint whose weights are a pickle (``adapter_model.bin``) instead of safetensors.
    """
    settings = settings or TrainSettings()
    resume_from = None
    if resume:
        resume_from = last_checkpoint(settings.output_dir, allow_pickle)
        if resume_from is None:
            raise FileNotFoundError(
                f"train.output_dir = {settings.output_dir!r} has no checkpoint-N folder to resume from; "
                "train with train.save_steps > 0 first, or drop --resume"
            )
    steps_run: list[int] = []
    trainer = build_trainer(model, tokenizer, train_data, settings, eval_data, max_seq_length,
                            [*(callbacks or []), _step_recorder(steps_run)])
    _reset_peak_memory()
    start = time.perf_counter()
    compiled = compile_for_training(model, settings)
    try:
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        runtime = time.perf_counter() - start
        if eval_data is not None:
            trainer.evaluate()
    finally:
        if compiled:
            uncompile(model)
    peak, kind = _peak_memory_mb()
    logs = trainer.state.log_history
    tokens = max([int(e["num_tokens"]) for e in logs if "num_tokens" in e] or [0])
    result = TrainResult(
        output_dir=settings.output_dir,
        steps=int(output.global_step),
        train_loss=[(int(e["step"]), float(e["loss"])) for e in logs if "loss" in e],
        eval_loss=[(int(e["step"]), float(e["eval_loss"])) for e in logs if "eval_loss" in e],
        runtime_s=runtime,
        trained_tokens=tokens,
        tokens_per_s=tokens / runtime if runtime else 0.0,
        peak_memory_mb=peak,
        memory_kind=kind,
        log_history=logs,
        resumed_from=str(resume_from) if resume_from else None,
        steps_run=steps_run,
        compiled=compiled,
    )
    os.makedirs(settings.output_dir, exist_ok=True)
    Path(settings.output_dir, "history.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    # accelerate wrapped model.forward in a bf16 autocast for training; undo it so the in-memory model
    # computes exactly like the same weights reloaded from disk (export.verify checks bit-equality).
    from accelerate.utils import extract_model_from_parallel

    extract_model_from_parallel(trainer.model, keep_fp32_wrapper=False)
    model.toolkit_trainer = trainer  # kept for notebooks that want trainer.state
    return result
