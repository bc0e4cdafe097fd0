"""The benchmark runner: size, batch-1 latency and batch-32 throughput per model, format, device, length.

Every candidate (a model in one format on one device) is prepared first: loaded, its inputs
tokenised once per sequence length (the same text for every model with the same tokenizer) and
moved to its device. The timing then interleaves the candidates: warm-up calls for all, then
timed round after timed round in which each candidate runs once. On a shared machine a noisy
moment thus slows every candidate alike, which keeps speed ratios between them honest.

Formats: ``pytorch-fp32``, ``pytorch-bf16`` (where the CPU or GPU has bf16), ``onnx-fp32`` and
``onnx-int8`` (ONNX Runtime; a PyTorch folder is exported on first use into the sibling folder
``bertdistill export`` writes by default, or into ``exports_dir`` when given, then reused; the
folders used are recorded per model under ``exports``).

An extractive-QA model reads a question and a context: its inputs are pair-shaped
(``[CLS] question [SEP] context [SEP]``, token types 0 then 1), cut to each length in the
context, as its windows are.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..export.families import family_of
from ..export.runtime import ONNX_FILE, OnnxModel, is_exported, read_manifest
from ..models.loading import resolve_model
from .latency import folder_bytes
from .machine import cpu_has_bf16

FORMATS = ("pytorch-fp32", "pytorch-bf16", "onnx-fp32", "onnx-int8")
#: the default lengths of a question-answering model: its 384-token windows and shorter ones
QA_LENGTHS = (128, 256, 384)
EXPORT_FORMAT = {"onnx-fp32": "onnx", "onnx-int8": "onnx-int8"}
# a long, ordinary English paragraph: tokenised and cut to each benchmark length
TEXT = (
    "the film opens on a quiet morning in a small coastal town , where a retired teacher finds a letter "
    "that her brother wrote forty years ago and never sent . what follows is a patient , warm and often "
    "funny story about memory , regret and the small kindnesses that hold a family together , carried by "
    "two wonderful lead performances and a score that knows when to stay silent . it is not a perfect "
    "film : the middle drags , a subplot about a missing boat goes nowhere , and the ending explains what "
    "the images had already said . but when it works , which is most of the time , it is the kind of "
    "movie you want to talk about on the way home , and again the next morning . "
) * 4


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


QUESTION = "what did the retired teacher find on a quiet morning in the small coastal town ?"


def token_inputs(tokenizer, length: int, batch: int, *, pair: bool = False) -> dict[str, np.ndarray]:
    """``batch`` identical rows of exactly ``length`` real tokens ([CLS] text ... [SEP]), int64;
    ``pair``: a question and the paragraph as its context ([CLS] question [SEP] context [SEP]).

    The paragraph is repeated as often as ``length`` needs (the model's position embeddings,
    checked before, are the limit)."""
    text = TEXT * (1 + length // 400)
    if pair:
        enc = tokenizer(QUESTION, text, truncation="only_second", max_length=length, return_tensors="np")
    else:
        enc = tokenizer(text, truncation=True, max_length=length, return_tensors="np")
    if enc["input_ids"].shape[1] != length:
        raise ValueError(f"--lengths {length}: this tokenizer makes only {enc['input_ids'].shape[1]} tokens of the "
                         "benchmark text; use shorter --lengths")
    out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
           "token_type_ids": enc.get("token_type_ids", np.zeros_like(enc["input_ids"]))}
    return {k: np.repeat(v.astype(np.int64), batch, axis=0) for k, v in out.items()}


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, parameters outside the embedding tables), tied weights counted once."""
    seen, total, embedding = set(), 0, 0
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if "embeddings." in name:
            embedding += p.numel()
    return total, total - embedding


@dataclass
class Candidate:
    """One model in one format on one device, ready to be called on prepared inputs."""

    model: str
    fmt: str
    device: str
    bytes: int
    call: Callable[[object], object]           # runs the model once on prepared inputs
    prepare: Callable[[dict], object]          # int64 numpy arrays by name -> what ``call`` takes
    inputs: dict = field(default_factory=dict)   # (length, batch) -> prepared inputs

    @property
    def key(self) -> str:
        return f"{self.model} {self.fmt} {self.device}"


def _torch_call(model, device: str) -> Callable:
    def call(inputs: dict):
        with torch.inference_mode():
            out = model(**inputs)  # logits, or a QA model's start and end logits
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return call


def _torch_prepare(names: Sequence[str], device: str) -> Callable[[dict], dict]:
    return lambda arrays: {n: torch.from_numpy(arrays[n]).to(device) for n in names}


def _onnx_prepare(names: Sequence[str]) -> Callable[[dict], dict]:
    return lambda arrays: {n: arrays[n] for n in names}


def unavailable_formats(formats: Sequence[str], device: str) -> dict[str, str]:
    """The formats of ``formats`` that cannot run on ``device`` here, each with the reason."""
    out = {}
    for fmt in formats:
        if fmt == "pytorch-bf16":
            if device == "cpu" and not cpu_has_bf16():
                out[fmt] = "this CPU has no bf16 instructions (avx512_bf16 / amx_bf16)"
            elif device == "cuda" and not torch.cuda.is_bf16_supported():
                out[fmt] = "this GPU has no bf16 support"
        if fmt.startswith("onnx") and device == "cuda":
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                out[fmt] = "this ONNX Runtime has no CUDAExecutionProvider (pip install onnxruntime-gpu)"
    return out


def formats_available(formats: Sequence[str], device: str) -> list[str]:
    """Which of ``formats`` can run on ``device`` here (bf16 needs hardware bf16; ONNX on CUDA its provider)."""
    missing = unavailable_formats(formats, device)
    return [fmt for fmt in formats if fmt not in missing]


def say_unavailable(formats: Sequence[str], devices: Sequence[str]) -> None:
    """One line per format left out on a device, so that a missing row is never a surprise."""
    for device in devices:
        for fmt, reason in unavailable_formats(formats, device).items():
            print(f"bertdistill: {fmt} on {device} is not timed: {reason}", file=sys.stderr)


def _onnx_folder(model_dir: str, name: str, fmt: str, data: str | None, exports_dir: str | None,
                 task: str | None = None, data_options: dict | None = None) -> str:
    """The exported folder for ``fmt``: ``exports_dir/<name>-<format>`` or the sibling export, made if missing."""
    from ..export.package import default_output, export_model

    if exports_dir:
        target = Path(exports_dir) / f"{name}-{EXPORT_FORMAT[fmt]}"
    else:
        target = default_output(model_dir, EXPORT_FORMAT[fmt])
    if not is_exported(target):
        print(f"exporting {model_dir} to {EXPORT_FORMAT[fmt]} for the benchmark -> {target}")
        if data is None:  # the run's own data, when the model's run folder names it
            from ..export.run_data import run_data

            found = run_data(model_dir)
            if found is not None:
                print(f"parity and dev data: {found.describe()}")
                data, task = found.data, task or found.task
                data_options = {**found.options, **(data_options or {})}
        # also scores it on dev when data loads (read as task with the data flags' data_options)
        export_model(model_dir, EXPORT_FORMAT[fmt], target, data=data, task=task, data_options=data_options)
    return str(target)


def load_candidates(model_dir: str, name: str, formats: Sequence[str], devices: Sequence[str], *, threads: int,
                    data: str | None = None, exports_dir: str | None = None, task: str | None = None,
                    data_options: dict | None = None) -> tuple[list[Candidate], dict]:
    """Candidates for one model folder (PyTorch or exported) and a description of the model."""
    if is_exported(model_dir):
        manifest = read_manifest(model_dir)
        own = {"onnx": "onnx-fp32", "onnx-int8": "onnx-int8"}[manifest["format"]]
        source, formats = manifest["source"], [f for f in formats if f == own] or [own]
        exported = {own: str(model_dir)}
    else:
        source, exported = resolve_model(model_dir), {}
    from ..qa_prediction import is_qa_model

    family = family_of(source)
    tokenizer = family.tokenizer(source)
    model = family.load(source).eval()
    total, no_emb = parameter_counts(model)
    info = {"dir": str(model_dir), "model_type": model.config.model_type, "params": total,
            "params_without_embeddings": no_emb, "inputs": list(family.inputs), "qa": is_qa_model(source)}
    candidates = []
    for device in devices:
        for fmt in formats_available(formats, device):
            if fmt.startswith("onnx") and not family.onnx:  # e.g. the BiLSTM student: PyTorch only
                print(f"bertdistill: {fmt} of {name} is not timed: no ONNX export for {model.config.model_type} "
                      "models yet", file=sys.stderr)
                continue
            if fmt.startswith("pytorch"):
                dtype = torch.bfloat16 if fmt == "pytorch-bf16" else torch.float32
                net = family.load(source, dtype=dtype).eval().to(device) if dtype != torch.float32 else model.to(device)
                size = folder_bytes(source) // (2 if dtype == torch.bfloat16 else 1)  # bf16 weights: half of fp32
                cand = Candidate(name, fmt, device, size, _torch_call(net, device),
                                 _torch_prepare(family.inputs, device))
            else:
                folder = exported.get(fmt) or _onnx_folder(str(model_dir), name, fmt, data, exports_dir,
                                                           task, data_options)
                exported[fmt] = folder
                # no spinning: ONNX Runtime's threads otherwise busy-wait after each run and take the
                # cores from the PyTorch candidate timed next (measured: teacher fp32 at 16 tokens
                # 64.7 ms interleaved with spinning sessions, 10.2 ms without them)
                session = OnnxModel(Path(folder) / ONNX_FILE, threads=threads, device=device, spinning=False)
                cand = Candidate(name, fmt, device, (Path(folder) / ONNX_FILE).stat().st_size, session.run_numpy,
                                 _onnx_prepare(session.input_names))
            candidates.append(cand)
    return candidates, info | {"tokenizer": tokenizer, "exports": exported}


def time_interleaved(candidates: list[Candidate], key, *, runs: int, warmup: int, desc: str,
                     progress: tqdm | None = None) -> dict[str, list[float]]:
    """Per candidate, ``runs`` wall times (ms) of one call on ``inputs[key]``, rounds interleaved.

    ``progress`` (a bar over every timed call of the benchmark) advances by one round of calls
    after each round, outside the timed region."""
    for cand in candidates:
        for _ in range(warmup):
            cand.call(cand.inputs[key])
    times: dict[str, list[float]] = {c.key: [] for c in candidates}
    if progress is not None:
        progress.set_description(desc)
    for _ in range(runs):
        for cand in candidates:
            start = time.perf_counter()
            cand.call(cand.inputs[key])
            times[cand.key].append((time.perf_counter() - start) * 1000.0)
        if progress is not None:
            progress.update(len(candidates))
    return times


def timing_progress(total: int) -> tqdm:
    """The progress bar of the timing: on a terminal a live bar, in a log file a line about every 30 s."""
    live = sys.stderr.isatty()
    return tqdm(total=total, unit="call", file=sys.stderr, dynamic_ncols=live, mininterval=0.5 if live else 30.0)


def summarise(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)
    return {"median_ms": statistics.median(ordered), "p90_ms": percentile(ordered, 90),
            "p99_ms": percentile(ordered, 99), "runs": len(ordered)}


def run_benchmark(model_dirs: Sequence[str], *, formats: Sequence[str] = FORMATS, lengths: Sequence[int] = (16, 64, 128),
                  runs: int = 200, warmup: int = 10, throughput_batch: int = 32, throughput_runs: int | None = None,
                  threads: int | None = None, devices: Sequence[str] | None = None, data: str | None = None,
                  names: Sequence[str] | None = None, exports_dir: str | None = None, task: str | None = None,
                  data_options: dict | None = None) -> dict:
    """Measure every model folder in every available format; returns the JSON-ready result."""
    from .machine import machine_info

    threads = int(threads or torch.get_num_threads())
    torch.set_num_threads(threads)
    devices = list(devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]))
    throughput_runs = throughput_runs or max(10, runs // 10)
    names = list(names or [Path(str(d)).name if Path(str(d)).name not in ("best", "student")
                           else Path(str(d)).parent.name for d in model_dirs])
    if len(set(names)) != len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    machine = machine_info(threads)
    print(f"CPU: {machine['cpu']}  flags: {' '.join(machine['cpu_flags'])}  threads: {threads}"
          + (f"  GPU: {machine['cuda']}" if machine["cuda"] else ""))
    say_unavailable(formats, devices)
    candidates, models = [], {}
    for model_dir, name in zip(model_dirs, names):
        cands, info = load_candidates(str(model_dir), name, formats, devices, threads=threads, data=data,
                                      exports_dir=exports_dir, task=task, data_options=data_options)
        tokenizer = info.pop("tokenizer")
        for length in lengths:
            for batch in (1, throughput_batch):
                arrays = token_inputs(tokenizer, length, batch, pair=info["qa"])
                for cand in cands:
                    cand.inputs[(length, batch)] = cand.prepare(arrays)
        models[name] = info | {"sizes": {f"{c.fmt} {c.device}": c.bytes for c in cands}}
        candidates += cands
    rows = []
    progress = timing_progress(len(lengths) * len(candidates) * (runs + throughput_runs))
    for length in lengths:
        latency = time_interleaved(candidates, (length, 1), runs=runs, warmup=warmup, desc=f"latency len {length}",
                                   progress=progress)
        bulk = time_interleaved(candidates, (length, throughput_batch), runs=throughput_runs, warmup=max(1, warmup // 5),
                                desc=f"throughput len {length}", progress=progress)
        for cand in candidates:
            rows.append({
                "model": cand.model, "format": cand.fmt, "device": cand.device, "length": length, "bytes": cand.bytes,
                "latency": summarise(latency[cand.key]),
                "throughput": {"batch": throughput_batch, "runs": throughput_runs,
                               "samples_per_s": throughput_batch * 1000.0 / statistics.median(bulk[cand.key])},
            })
    progress.close()
    return {"machine": machine,
            "settings": {"lengths": list(lengths), "runs": runs, "warmup": warmup, "throughput_batch": throughput_batch,
                         "throughput_runs": throughput_runs, "threads": threads, "devices": devices,
                         "formats": list(formats), "timing": "interleaved rounds, identical pre-tokenised inputs"},
            "models": models, "rows": rows}


def format_table(result: dict) -> str:
    """The on-screen table: one line per model, format, device and length."""
    header = (f"{'model':<22} {'format':<13} {'dev':<4} {'len':>4} {'params':>11} {'no-emb':>11} {'MB':>7} "
              f"{'median ms':>9} {'p90':>7} {'p99':>7} {'b32 /s':>8}")
    lines = [header, "-" * len(header)]
    for row in result["rows"]:
        info = result["models"][row["model"]]
        lat = row["latency"]
        lines.append(
            f"{row['model'][:22]:<22} {row['format']:<13} {row['device']:<4} {row['length']:>4} {info['params']:>11,} "
            f"{info['params_without_embeddings']:>11,} {row['bytes'] / 1e6:>7.1f} {lat['median_ms']:>9.2f} "
            f"{lat['p90_ms']:>7.2f} {lat['p99_ms']:>7.2f} {row['throughput']['samples_per_s']:>8.1f}"
        )
    s = result["settings"]
    lines.append(f"latency: batch 1, {s['runs']} timed runs after {s['warmup']} warm-up runs; throughput: batch "
                 f"{s['throughput_batch']}, median of {s['throughput_runs']} runs; {s['threads']} threads; {s['timing']}")
    return "\n".join(lines)
