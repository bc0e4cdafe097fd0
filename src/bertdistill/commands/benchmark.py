"""`bertdistill benchmark MODEL_DIR...`: size, latency and throughput per format, table + JSON."""

from __future__ import annotations

import argparse

from .export import export_data_options
from .options import add_data_args


DEFAULT_LENGTHS = "16,64,128"
QA_LENGTHS = "128,256,384"  # bench.runner.QA_LENGTHS: the default when a model answers questions


def int_list(value: str, flag: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated integers, got {value!r}") from None
    if not out or any(v < 1 for v in out):
        raise ValueError(f"{flag} expects positive integers, got {value!r}")
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("benchmark", help="parameters, size, latency and throughput per format",
                              description="Time saved or exported models per format. ONNX exports made on the "
                                          "way are parity-checked on the dev split of --data (read with the data "
                                          "flags; --task defaults to the model's own task).")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR", help="saved or exported model folders")
    p.add_argument("--lengths", default=None,
                   help=f"sequence lengths (comma-separated; default {DEFAULT_LENGTHS}, {QA_LENGTHS} when a model "
                        "answers questions, less those a model's positions do not allow)")
    p.add_argument("--runs", type=int, default=200, help="timed batch-1 runs per length (at least 200 for p99)")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs before timing (default: 10)")
    p.add_argument("--batch", type=int, default=32, help="batch size of the throughput measurement")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's setting)")
    p.add_argument("--formats", default=",".join(("pytorch-fp32", "pytorch-bf16", "onnx-fp32", "onnx-int8")),
                   help="formats to time, comma-separated (default: all four)")
    p.add_argument("--devices", default=None, help="cpu,cuda (default: cpu, plus cuda when present)")
    p.add_argument("--names", default=None, help="display names, comma-separated, one per MODEL_DIR")
    add_data_args(p, with_max_length=False)  # read for the parity check of ONNX exports made on the way
    p.add_argument("--exports-dir", default=None,
                   help="put ONNX exports made on the way here (default: beside each model folder)")
    p.add_argument("--output", default=None, help="write the JSON result here")
    p.set_defaults(handler=run)


def qa_source(model_dir: str) -> bool:
    """Whether ``model_dir`` (a saved or exported folder) answers questions; False for a folder
    that is not there (the checks below name it)."""
    from pathlib import Path

    from ..qa_prediction import is_qa_model

    return Path(str(model_dir)).expanduser().is_dir() and is_qa_model(model_dir)


def run(args: argparse.Namespace) -> dict:
    import json
    from pathlib import Path

    from ..bench.runner import FORMATS, format_table, run_benchmark
    from ..export.families import family_of
    from ..export.runtime import is_exported, read_manifest
    from ..models.checks import check_max_length, model_positions
    from ..models.loading import resolve_model
    from ..writable import check_writable_file

    default_lengths = args.lengths is None
    qa = default_lengths and any(qa_source(d) for d in args.model_dirs)
    if qa:
        print(f"bertdistill: question-answering model: timed at lengths {QA_LENGTHS} (--lengths sets others)")
    chosen = (QA_LENGTHS if qa else DEFAULT_LENGTHS) if default_lengths else args.lengths
    lengths = int_list(chosen, "--lengths")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"--formats: unknown {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else None
    if devices and any(d not in ("cpu", "cuda") for d in devices):
        raise ValueError(f"--devices expects cpu and/or cuda, got {args.devices!r}")
    if args.runs < 1 or args.warmup < 0 or args.batch < 1 or (args.threads is not None and args.threads < 1):
        raise ValueError("--runs, --batch and --threads must be positive and --warmup not negative")
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    if names and len(names) != len(args.model_dirs):
        raise ValueError(f"--names gives {len(names)} names for {len(args.model_dirs)} MODEL_DIRs")
    for model_dir in args.model_dirs:  # every folder checked before any model is loaded
        source = resolve_model(model_dir)  # damaged config.json / weights named here
        family_of(read_manifest(model_dir)["source"] if is_exported(model_dir) else source)
        limit = model_positions(source)
        if default_lengths and limit is not None and max(lengths) > limit:
            print(f"bertdistill: lengths above {limit} not timed: {model_dir} has {limit} positions")
            lengths = [n for n in lengths if n <= limit] or [limit]
        check_max_length(source, max(lengths), "--lengths", name=model_dir)
    if args.output:
        check_writable_file(args.output, "--output")
    result = run_benchmark(args.model_dirs, formats=formats, lengths=lengths, runs=args.runs, warmup=args.warmup,
                           throughput_batch=args.batch, threads=args.threads, devices=devices, data=args.data,
                           task=args.task, data_options=export_data_options(args), names=names,
                           exports_dir=args.exports_dir)
    print(format_table(result))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.output}")
    return result
