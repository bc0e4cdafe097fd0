"""`bertdistill report RUN_DIR...`: Markdown + JSON report with plots, and model cards."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="report a teacher and its students: metric, size, speed, plots")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finetune / distill --output folders")
    p.add_argument("--output", default="report", help="folder for report.md, report.json and the PNGs")
    p.add_argument("--benchmark", default=None, help="use this `bertdistill benchmark --output` JSON instead of measuring")
    p.add_argument("--lengths", default=None, help="sequence lengths to time (comma-separated; default 16,64,128, "
                                                   "for question answering 128,256,384)")
    p.add_argument("--runs", type=int, default=200, help="timed batch-1 runs per length (default: 200)")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs (default: 10)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's setting)")
    p.add_argument("--formats", default=None, help="formats to measure (default: all four)")
    p.add_argument("--plot-length", type=int, default=None, help="sequence length of the plot (default: 64)")
    p.add_argument("--exports-dir", default=None, help="where ONNX exports made for the measurement go")
    p.add_argument("--no-model-cards", action="store_true", help="do not write README.md model cards into the student folders")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> dict:
    from ..bench.runner import FORMATS
    from ..report import build_report
    from .benchmark import int_list

    formats = [f.strip() for f in args.formats.split(",")] if args.formats else None
    if formats and any(f not in FORMATS for f in formats):
        raise ValueError(f"--formats: choose from {', '.join(FORMATS)}, got {args.formats!r}")
    if args.runs < 1:
        raise ValueError(f"--runs must be positive, got {args.runs}")
    return build_report(args.run_dirs, args.output, benchmark=args.benchmark,
                        lengths=int_list(args.lengths, "--lengths") if args.lengths is not None else None,
                        runs=args.runs, warmup=args.warmup, formats=formats, plot_length=args.plot_length,
                        threads=args.threads, model_cards=not args.no_model_cards, exports_dir=args.exports_dir)
