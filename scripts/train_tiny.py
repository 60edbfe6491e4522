"""Train tiny miniatures as 3-class preference classifiers: the shipped ones, or your own model's.

Seeded and CPU-only: the same seed and library versions give the same weights and held-out
log-loss. `--check` retrains without writing and compares with the shipped training.json
(to 1e-3). Each model trains in its own single-threaded process, `--jobs` at a time
(default 2: tiny-gemma2, the slowest at about 25 minutes, beside the other two).

Your own model: `--config path/config.json` shrinks it by the miniature rules (docs/models.md)
for a CPU tier with `--max-length` (default the bundled CPU tier's) and writes the weights to
`trained/<name>/` beside the config.json, where a matrix declaring that config finds them.
`--matrix my.toml --model NAME` trains a model exactly as that matrix declares it.

Usage: python scripts/train_tiny.py [--check] [--jobs N] [tiny-llama3 tiny-gemma2 ...]
       python scripts/train_tiny.py --config models/my-qwen/config.json [--name my-qwen] [--tokenizer tok.json]
       python scripts/train_tiny.py --matrix my.toml --model my-qwen
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from perfsuite.models.specs import SPECS, ModelSpec
from perfsuite.models.training import REPORT_FILE, TRAINED_DIR, TrainConfig, save_trained, train


def train_one(name: str, check: bool) -> dict:
    """Train one miniature (in a worker process); write its weights unless checking."""
    model, report = train(SPECS[name], TrainConfig(), log=lambda line: print(line, flush=True))
    if not check:
        folder = save_trained(model, SPECS[name], report)
        print(f"{name}: held-out {report['heldout']} in {report['seconds']} s -> {folder}", flush=True)
    return report


def declared_miniature(args: argparse.Namespace) -> ModelSpec:
    """The miniature a --config or --matrix/--model names (MatrixError / ModelConfigError on bad input)."""
    from perfsuite.matrix.tier import MatrixError, load_matrix
    from perfsuite.models.config_json import default_name
    from perfsuite.models.declared import ModelDeclaration, declared_spec

    if args.matrix:
        matrix = load_matrix(args.matrix)
        if matrix.settings.device != "cpu":
            raise MatrixError(f"{args.matrix}: a {matrix.settings.device} tier runs full-size models; nothing to train")
        if args.model not in matrix.models:
            declared = ", ".join(matrix.models) or "none"
            raise MatrixError(f"{args.matrix}: --model {args.model!r} is not declared in its [[models]] ({declared})")
        return matrix.models[args.model]
    config = Path(args.config)
    tokenizer = Path(args.tokenizer) if args.tokenizer else None
    name = args.name or default_name(config)
    max_length = args.max_length or load_matrix("cpu").settings.max_length
    return declared_spec(ModelDeclaration(name, config, tokenizer=tokenizer), "cpu", max_length)


def train_declared(args: argparse.Namespace) -> int:
    from perfsuite.matrix.tier import MatrixError
    from perfsuite.measure.workload import Workload
    from perfsuite.models.config_json import ModelConfigError

    try:
        spec = declared_miniature(args)
    except (MatrixError, ModelConfigError) as exc:
        print(f"train_tiny: {exc}", file=sys.stderr)
        return 2
    tokenizer = Workload.load_tokenizer(Workload.tokenizer_key(spec), spec)
    print(f"{spec.name}: miniature {json.dumps(spec.extra.get('shrunk', {}))}", flush=True)
    model, report = train(spec, TrainConfig(), log=lambda line: print(line, flush=True), tokenizer=tokenizer)
    if args.check:
        print(f"{spec.name}: held-out {report['heldout']} (not written: --check)")
        return 0
    folder = save_trained(model, spec, report)
    print(f"{spec.name}: held-out {report['heldout']} in {report['seconds']} s -> {folder}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="shipped miniatures to train (default: all tiny ones)")
    parser.add_argument("--check", action="store_true", help="retrain and compare with the shipped report")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once, one process each")
    own = parser.add_argument_group("your own model")
    own.add_argument("--config", default=None, help="a config.json to shrink and train")
    own.add_argument("--name", default=None, help="its model name (default: the config's folder name)")
    own.add_argument("--tokenizer", default=None, help="a tokenizer.json its rows are encoded with")
    own.add_argument("--max-length", type=int, default=None, help="the CPU tier's max_length (default: bundled)")
    own.add_argument("--matrix", default=None, help="a matrix TOML declaring the model (with --model)")
    own.add_argument("--model", default=None, help="the declared model of --matrix to train")
    args = parser.parse_args(argv)
    if args.config or args.matrix:
        if args.models or (args.matrix and not args.model) or (args.config and args.matrix):
            parser.error("give --config PATH, or --matrix PATH --model NAME, and no shipped model names")
        return train_declared(args)
    tiny = [n for n, s in SPECS.items() if s.tiny]
    unknown = sorted(set(args.models) - set(tiny))
    if unknown:
        parser.error(f"not tiny miniatures: {', '.join(unknown)}; choose from {', '.join(tiny)}")
    # Slowest first, so that the others share the second worker.
    names = sorted(args.models or tiny, key=lambda n: n != "tiny-gemma2")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        reports = dict(zip(names, pool.map(train_one, names, [args.check] * len(names)), strict=True))
    failed = 0
    if args.check:
        for name, report in reports.items():
            shipped = json.loads((TRAINED_DIR / name / REPORT_FILE).read_text(encoding="utf-8"))["heldout"]["log_loss"]
            now = report["heldout"]["log_loss"]
            same = abs(now - shipped) <= 1e-3
            failed += not same
            print(f"{name}: held-out log-loss {now:.6f}, shipped {shipped:.6f}: {'reproduced' if same else 'DIFFERS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
