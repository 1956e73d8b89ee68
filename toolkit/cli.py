"""``python -m toolkit <command>``: each notebook step as a command, and the whole story as ``demo``.

Every command reads a preset (``--config configs/demo.yaml`` by default) and ``--set section.key=value``
overrides; unknown keys and bad values stop the command before any work, with the field and the fix.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
examples:
  python -m toolkit demo                                   # the whole story on the embedded model (~20 min, 2 CPU cores)
  python -m toolkit demo --config configs/smoke.yaml       # tiny model, ~3 min: checks the plumbing
  python -m toolkit train --set lora.r=8 --set train.lr=1e-3
  python -m toolkit arena --set arena.hands=400            # base model vs the bots
  python -m toolkit analyse runs/demo runs/demo-seed2      # LoRA lab on two runs

settings: configs/*.yaml lists every key with a comment; --set uses the same dotted names
(model.name, lora.r, train.max_steps, spots.n_spots, arena.hands, eval.opponents, ...).
"""

COMMANDS = {
    "materialize": "build (once) the cached HF checkpoint of the model: 'default' is dequantized from the embedded GGUF",
    "data": "generate the teacher-labelled poker spot dataset (reused when its settings match)",
    "train": "load, attach LoRA, fine-tune with SFT, save adapters to runs/<name>/adapter (--resume continues)",
    "export": "reload the saved adapters from disk, size report, merge to 16-bit and verify logits",
    "eval": "decision accuracy vs the teacher on held-out spots (base model, or --adapter runs/<name>/adapter)",
    "arena": "duplicate heads-up matches against PyPokerEngine's bots (base model, or --adapter ...)",
    "demo": "everything above, before and after fine-tuning, and runs/<name>/report.md",
    "analyse": "LoRA lab: ΔW spectra, subspace similarity between two runs, checkpoint size (RUN_A [RUN_B])",
    "chat": "talk to the model (with --adapter) from the terminal",
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m toolkit", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = top.add_subparsers(dest="command", metavar="command", required=True)
    for name, text in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "analyse":
            p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or adapter folders); two to compare")
            p.add_argument("--out", default=None, help="where to write analysis.md (default: RUN_A/analysis)")
            continue
        p.add_argument("--config", default="configs/demo.yaml", help="preset YAML (default: %(default)s)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set lora.r=8 (repeatable)")
        if name == "train":
            p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in train.output_dir")
        if name in ("eval", "arena", "chat"):
            p.add_argument("--adapter", default=None, help="adapter export folder (default: the base model)")
        if name == "export":
            p.add_argument("--no-merge", action="store_true", help="skip the merged 16-bit export")
        if name == "chat":
            p.add_argument("message", nargs="?", default=None, help="one message (default: interactive)")
    return top


def _model(settings, adapter: str | None):
    from toolkit.export import load_adapters
    from toolkit.pipeline import for_play
    from toolkit.load import load_model

    if adapter:
        model, tokenizer = load_adapters(adapter, settings.model.max_seq_length)
        return for_play(settings, model), tokenizer
    return load_model(settings.model)


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "analyse":
        from toolkit.analysis import analyse_runs

        a, b = args.runs[0], args.runs[1] if len(args.runs) > 1 else None
        out = args.out or str(Path(a) / "analysis")
        result = analyse_runs(a, b, out_dir=out)
        print(f"wrote {out}/analysis.md")
        _print({k: v for k, v in result.items() if k in ("summary", "files")} if isinstance(result, dict) else result)
        return 0

    from toolkit import pipeline

    settings = pipeline.load_settings(args.config, args.overrides)
    if args.command == "materialize":
        print(pipeline.step_materialize(settings))
    elif args.command == "data":
        result = pipeline.step_data(settings)
        _print({"dir": result["dir"], "reused": result["reused"], "rows": result["stats"]["rows"]})
    elif args.command == "train":
        pipeline.step_data(settings)
        _, _, result = pipeline.step_train(settings, resume=args.resume)
        _print({k: v for k, v in result.to_dict().items() if k != "log_history"})
    elif args.command == "export":
        _print(pipeline.step_export(settings, merged=not args.no_merge)["result"])
    elif args.command == "eval":
        pipeline.step_data(settings)
        model, tokenizer = _model(settings, args.adapter)
        result = pipeline.step_eval(settings, model, tokenizer, "finetuned" if args.adapter else "base")
        _print({k: result[k] for k in ("overall", "by_street", "agreement", "decisions_per_s")})
    elif args.command == "arena":
        model, tokenizer = _model(settings, args.adapter)
        result = pipeline.step_arena(settings, model, tokenizer, "finetuned" if args.adapter else "base")
        _print({name: r.get("bb100", r) for name, r in result.items()})
    elif args.command == "chat":
        from toolkit.infer import chat, stream_chat

        model, tokenizer = _model(settings, args.adapter)
        if args.message:
            print(chat(model, tokenizer, args.message, max_new_tokens=128))
            return 0
        print("type a message (empty line to quit)")
        for line in sys.stdin:
            if not line.strip():
                break
            for piece in stream_chat(model, tokenizer, line.strip(), max_new_tokens=128):
                print(piece, end="", flush=True)
            print()
    elif args.command == "demo":
        from toolkit.demo import run_demo

        report = run_demo(settings)
        print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
