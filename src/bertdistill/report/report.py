"""`bertdistill report`: a teacher and its students side by side, as Markdown, JSON and plots.

Per model: the task metric and its retention of the teacher's, parameters, size, and per
format (PyTorch fp32 / bf16, ONNX Runtime fp32 / int8) the batch-1 latency and speed-up over
the teacher in PyTorch fp32, with the dev metric of each exported format where the export
measured it. Plus the training-loss curves per loss term and the accuracy-versus-latency plot
with its Pareto front. Every student also gets a model card (README.md in its folder).

Question answering is reported by exact match (the main metric) and F1, both next to size and
latency, and timed by default at its window lengths (``bench.runner.QA_LENGTHS``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..bench.runner import EXPORT_FORMAT, QA_LENGTHS
from ..export.package import default_output
from ..export.runtime import is_exported, read_manifest
from ..data.errors import DataError
from ..models.checks import check_max_length, model_positions
from ..models.loading import task_from_labels
from ..writable import check_writable_folder
from .model_card import write_model_card
from .plots import accuracy_latency_plot, loss_curves_plot, pareto_front
from .runs import RunEntry, loss_curves, read_run


def collect_entries(run_dirs: Sequence[str]) -> list[RunEntry]:
    """The runs, with the teacher first: a teacher run if given, else the students' teacher."""
    entries = [read_run(d) for d in run_dirs]
    teachers = [e for e in entries if e.kind == "teacher"]
    students = [e for e in entries if e.kind == "student"]
    if len(teachers) > 1:
        raise ValueError(f"give one teacher run, got {len(teachers)}: {', '.join(e.run_dir for e in teachers)}")
    if not teachers:
        if not students:
            raise ValueError("no runs given")
        first = students[0]
        teachers = [RunEntry("teacher", "teacher", first.results["teacher"], None, first.teacher_metrics or {})]
    teachers[0].name = "teacher"
    return teachers + students


def _same_dir(a: str, b: str) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def bench_name(bench: dict, entry: RunEntry) -> str | None:
    """The benchmark's name for ``entry``'s model (matched by folder, or by an export's source)."""
    for name, info in bench.get("models", {}).items():
        folder = info["dir"]
        if is_exported(folder):
            folder = read_manifest(folder)["source"]
        if _same_dir(folder, entry.model_dir):
            return name
    return entry.name if entry.name in bench.get("models", {}) else None


def format_metric(entry: RunEntry, fmt: str, main: str, exports: dict | None = None) -> float | None:
    """The dev metric of ``entry`` in ``fmt``: the run's own for PyTorch fp32, an export's measured one
    for ONNX formats (the export the benchmark used, else the default sibling folder); None where
    nothing was measured (e.g. bf16)."""
    if fmt == "pytorch-fp32":
        return entry.metrics.get(main)
    if fmt in EXPORT_FORMAT:
        folder = (exports or {}).get(fmt) or default_output(entry.model_dir, EXPORT_FORMAT[fmt])
        if is_exported(folder):
            evaluation = read_manifest(folder).get("evaluation") or {}
            value = (evaluation.get("metrics") or {}).get(EXPORT_FORMAT[fmt], {}).get(main)
            return float(value) if value is not None else None
    return None


def extra_metrics(task) -> list[str]:
    """The metrics shown beside the main one: F1 for question answering (after exact match)."""
    return [m for m in task.metrics if m != task.main_metric] if task.kind == "qa" else []


def speed_rows(bench: dict, entries: list[RunEntry], main: str, device: str = "cpu",
               extra: Sequence[str] = ()) -> list[dict]:
    """One row per model, format and length: latency, throughput, size, speed-up, metric (and each
    of ``extra``, by its name)."""
    names = {e.name: bench_name(bench, e) for e in entries}
    base = {}
    for row in bench["rows"]:
        if row["model"] == names["teacher"] and row["format"] == "pytorch-fp32" and row["device"] == device:
            base[row["length"]] = row["latency"]["median_ms"]
    out = []
    for entry in entries:
        for row in bench["rows"]:
            if row["model"] != names[entry.name] or row["device"] != device:
                continue
            median = row["latency"]["median_ms"]
            out.append({
                "model": entry.name, "format": row["format"], "length": row["length"], "bytes": row["bytes"],
                "latency_ms": median, "p90_ms": row["latency"]["p90_ms"], "p99_ms": row["latency"]["p99_ms"],
                "samples_per_s": row["throughput"]["samples_per_s"],
                "speedup": base[row["length"]] / median if row["length"] in base else None,
                "metric": format_metric(entry, row["format"], main, bench["models"][row["model"]].get("exports")),
                **{name: format_metric(entry, row["format"], name, bench["models"][row["model"]].get("exports"))
                   for name in extra},
            })
    return out


def _fmt(value, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def markdown(report: dict) -> str:
    main, t = report["main_metric"], report["teacher_metric"]
    extra = report.get("extra_metrics") or []
    heads, rules = "".join(f" {name} |" for name in extra), "---|" * len(extra)
    lines = [f"# Distillation report: {report['task']}", "",
             f"Task metric: **{main}** on the dev split. Speed: CPU `{report['machine'].get('cpu')}` "
             f"({' '.join(report['machine'].get('cpu_flags', []))}), {report['machine'].get('threads')} threads, "
             f"{report['settings'].get('timing')}; latency at batch 1, {report['settings'].get('runs')} timed runs "
             f"after {report['settings'].get('warmup')} warm-up runs.", "",
             "## Models", "",
             f"| model | kind | {main} | retention |{heads} parameters | without embeddings | size (MB) |",
             "|---|---|---|---|" + rules + "---|---|---|"]
    for m in report["models"]:
        retention = m["metric"] / t if (m["metric"] is not None and t) else None
        values = "".join(f" {_fmt((m.get('metrics') or {}).get(name), '.4f')} |" for name in extra)
        lines.append(f"| {m['name']} | {m['kind']} | {_fmt(m['metric'], '.4f')} | {_fmt(retention, '.1%')} |{values} "
                     f"{_fmt(m['params'], ',')} | {_fmt(m['params_without_embeddings'], ',')} | "
                     f"{_fmt(m['bytes'] / 1e6 if m['bytes'] else None, '.1f')} |")
    lines += ["", "## Speed and accuracy per format", "",
              f"Speed-up: the teacher's PyTorch fp32 median latency over this row's, at the same length. "
              f"{main} per format: measured on dev by `bertdistill export` (— where not measured).", "",
              f"| model | format | length | size (MB) | median ms | p90 ms | p99 ms | batch-{report['settings'].get('throughput_batch')} samples/s | speed-up | {main} |{heads}",
              "|---|---|---|---|---|---|---|---|---|---|" + rules]
    for r in report["speed"]:
        values = "".join(f" {_fmt(r.get(name), '.4f')} |" for name in extra)
        lines.append(f"| {r['model']} | {r['format']} | {r['length']} | {r['bytes'] / 1e6:.1f} | {r['latency_ms']:.2f} | "
                     f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['samples_per_s']:.1f} | "
                     f"{_fmt(r['speedup'], '.2f')}x | {_fmt(r['metric'], '.4f')} |{values}")
    lines += ["", f"## {main} vs latency", "",
              f"![{main} vs latency]({report['plots']['accuracy_latency']})", "",
              f"Pareto front at length {report['plot_length']} (no other point is both faster and better): "
              + ", ".join(report["pareto"]) + ".", "",
              "## Training loss per term", "", f"![loss curves]({report['plots']['loss_curves']})", ""]
    for m in report["models"]:
        if m.get("command"):
            lines += [f"Reproduce **{m['name']}**:", "", "```bash", m["command"], "```", ""]
    return "\n".join(lines)


DEFAULT_LENGTHS = (16, 64, 128)  # `report --lengths` default: those above a model's positions are left out


def read_benchmark(path: str | Path) -> dict:
    """A ``bertdistill benchmark --output`` JSON; errors name the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--benchmark {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(path, None, "not UTF-8 text: give the JSON file `bertdistill benchmark --output` "
                                    "wrote (--benchmark)") from None
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"not valid JSON ({err.msg}); give the file `bertdistill benchmark "
                                          "--output` wrote (--benchmark)") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or not isinstance(data.get("models"), dict):
        raise DataError(path, None, "not a benchmark result (no 'rows' and 'models'); give the file "
                                    "`bertdistill benchmark --output` wrote (--benchmark)")
    return data


def build_report(run_dirs: Sequence[str], output: str | Path, *, benchmark: str | dict | None = None,
                 lengths: Sequence[int] | None = None, runs: int = 200, warmup: int = 10,
                 formats: Sequence[str] | None = None, plot_length: int | None = None, threads: int | None = None,
                 model_cards: bool = True, exports_dir: str | None = None) -> dict:
    """Write report.md, report.json, accuracy_latency.png and loss_curves.png under ``output``.

    ``output`` (a folder that can be written), the ``benchmark`` JSON and the runs are checked
    before anything is measured. ``lengths`` (None: 16, 64 and 128 tokens, or for question
    answering 128, 256 and 384) are cut to the models' positions when not given."""
    check_writable_folder(output, "--output")
    if isinstance(benchmark, (str, Path)):
        benchmark = read_benchmark(benchmark)
    entries = collect_entries(run_dirs)
    task = task_from_labels(entries[0].model_dir)
    main, extra = task.main_metric, extra_metrics(task)
    default_lengths = lengths is None
    if default_lengths:
        lengths = QA_LENGTHS if task.kind == "qa" else DEFAULT_LENGTHS  # a QA model reads 384-token windows
    if benchmark is None:
        limits = [n for n in (model_positions(e.model_dir) for e in entries) if n is not None]
        if default_lengths and limits and max(lengths) > min(limits):
            print(f"bertdistill: lengths above {min(limits)} not timed: a model has {min(limits)} positions")
            lengths = [n for n in lengths if n <= min(limits)] or [min(limits)]
        for e in entries:  # every model can read the longest length, before any is timed
            check_max_length(e.model_dir, max(lengths), "--lengths", name=e.model_dir)
        from ..bench.runner import FORMATS, run_benchmark

        data = next((e.config.get("data") for e in entries if e.config.get("data")), None)
        benchmark = run_benchmark([e.model_dir for e in entries], names=[e.name for e in entries],
                                  formats=formats or FORMATS, lengths=lengths, runs=runs, warmup=warmup,
                                  threads=threads, devices=["cpu"], data=data, exports_dir=exports_dir)
    missing = [e.name for e in entries if bench_name(benchmark, e) is None]
    if missing:
        raise ValueError(f"--benchmark has no measurements of {', '.join(missing)}; benchmark those folders too")
    speed = speed_rows(benchmark, entries, main, extra=extra)
    measured = sorted({r["length"] for r in speed})
    preferred = max(QA_LENGTHS) if task.kind == "qa" else 64
    plot_length = plot_length or (preferred if preferred in measured else measured[0])
    if plot_length not in measured:
        raise ValueError(f"--plot-length {plot_length} was not measured; measured lengths: {measured}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    points = [{"label": f"{r['model']} {r['format']}", "latency_ms": r["latency_ms"], "metric": r["metric"]}
              for r in speed if r["length"] == plot_length and r["metric"] is not None]
    accuracy_latency_plot(points, out / "accuracy_latency.png", metric=main, length=plot_length)
    front = [points[i]["label"] for i in pareto_front([(p["latency_ms"], p["metric"]) for p in points])]
    curves = {e.name: loss_curves(e.run_dir) for e in entries if e.run_dir}
    loss_curves_plot({k: v for k, v in curves.items() if v}, out / "loss_curves.png")
    models = []
    for e in entries:
        info = benchmark["models"][bench_name(benchmark, e)]
        models.append({"name": e.name, "kind": e.kind, "model_dir": e.model_dir, "run_dir": e.run_dir,
                       "metric": e.metrics.get(main), "metrics": e.metrics, "params": info.get("params"),
                       "params_without_embeddings": info.get("params_without_embeddings"),
                       "bytes": info.get("sizes", {}).get("pytorch-fp32 cpu"), "command": e.command(),
                       "recipe": e.results.get("recipe")})
    report = {"task": task.name, "main_metric": main, "extra_metrics": extra,
              "teacher_metric": entries[0].metrics.get(main),
              "models": models, "speed": speed, "plot_length": plot_length, "pareto": front,
              "machine": benchmark.get("machine", {}), "settings": benchmark.get("settings", {}),
              "plots": {"accuracy_latency": "accuracy_latency.png", "loss_curves": "loss_curves.png"}}
    (out / "report.md").write_text(markdown(report) + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if model_cards:
        for e, m in zip(entries, models):
            if e.kind == "student":
                card = write_model_card(e, entries[0], task, m, [r for r in speed if r["model"] == e.name])
                print(f"model card: {card}")
    print(f"report: {out / 'report.md'}")
    return report
