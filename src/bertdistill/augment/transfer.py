"""The augmented transfer set: originals kept, N perturbed copies each, duplicates dropped.

Written as JSON lines a person can read (one example per line: text, text_pair, label —
null for augmented copies, which the teacher labels —, ``origin``, the index of the
original, and ``method``), with a ``<file>.meta.json`` beside it holding the method, its
options, the seed and the counts. The meta's ``key`` (a hash of all of it) goes into the
teacher cache's location, so augmented outputs are never mixed up with other sets.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import defaultdict
from pathlib import Path

from tqdm.auto import tqdm

from ..data.errors import DataError
from ..data.examples import Example
from .registry import Augmenter, build_augmenter, check_positive_int

PAIR_SIDES = ("one", "both")


def augment_examples(examples: list[Example], augmenter: Augmenter, *, copies: int = 20, seed: int = 0,
                     subset: int | None = None, pair_sides: str = "both", max_tries: int = 3,
                     progress: bool = True) -> list[Example]:
    """``examples`` plus up to ``copies`` new, distinct perturbed copies of each (or of a seeded
    ``subset`` of them). Pairs perturb both sides, or one side chosen at random."""
    copies = check_positive_int("copies", copies)
    if subset is not None:
        subset = check_positive_int("augment_subset", subset)
    if pair_sides not in PAIR_SIDES:
        raise ValueError(f"--pair-sides must be one of {', '.join(PAIR_SIDES)}, got {pair_sides!r}")
    if not examples:
        raise ValueError("the transfer set is empty: nothing to augment (check --data / --task)")
    is_pair = any(e.text_pair is not None for e in examples)
    if augmenter.needs_partner and is_pair:
        raise ValueError(f"--method {augmenter.name} combines single sentences; this task has sentence pairs")
    rng = random.Random(seed)
    texts = [e.text for e in examples] + [e.text_pair for e in examples if e.text_pair is not None]
    augmenter.fit(texts)
    chosen = range(len(examples))
    if subset is not None and subset < len(examples):
        chosen = sorted(random.Random(seed + 1).sample(range(len(examples)), subset))
    by_label = defaultdict(list)
    if augmenter.needs_partner:
        for i, e in enumerate(examples):
            by_label[e.label].append(i)
    seen = {(e.text, e.text_pair) for e in examples}
    out = list(examples)
    for i in tqdm(chosen, desc=f"augment ({augmenter.name})", disable=not progress or None):
        e = examples[i]
        made = 0
        for _ in range(copies * max_tries):
            if made == copies:
                break
            partner = examples[rng.choice(by_label[e.label])].text if augmenter.needs_partner else None
            text, pair = e.text, e.text_pair
            sides = ("a", "b") if pair is None or pair_sides == "both" else (rng.choice(("a", "b")),)
            if "a" in sides:
                text = augmenter.augment(text, rng, partner)
            if pair is not None and "b" in sides:
                pair = augmenter.augment(pair, rng, None)
            if not text.strip() or (text, pair) in seen:
                continue
            seen.add((text, pair))
            out.append(Example(text=text, text_pair=pair, label=None, source=f"augmented:{augmenter.name}:{i}"))
            made += 1
    return out


def spec_key(meta: dict) -> str:
    return hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_transfer_set(path: str | Path, examples: list[Example], meta: dict) -> Path:
    """JSON lines + ``.meta.json``, each written to a temporary file and renamed (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for e in examples:
        origin = e.source.rsplit(":", 1)[-1] if e.source.startswith("augmented:") else None
        lines.append(json.dumps({"text": e.text, "text_pair": e.text_pair, "label": e.label,
                                 "origin": int(origin) if origin is not None else None,
                                 "method": e.source.split(":")[1] if origin is not None else None},
                                ensure_ascii=False))
    meta = {**meta, "examples": len(examples), "augmented": sum(e.label is None for e in examples)}
    meta["key"] = spec_key({k: v for k, v in meta.items() if k != "key"})
    for target, text in ((path, "\n".join(lines) + "\n"), (meta_path(path), json.dumps(meta, indent=2))):
        tmp = target.with_name(f".{target.name}.partial")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return path


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def read_transfer_set(path: str | Path) -> tuple[list[Example], dict]:
    """The examples and meta of a file written by :func:`write_transfer_set`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transfer set {path} not found (write one with `bertdistill augment`)")
    meta = json.loads(meta_path(path).read_text()) if meta_path(path).is_file() else {}
    examples = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(str(path), n, "expected a JSON object with a 'text' field") from None
            if not isinstance(text, str) or not text.strip():
                raise DataError(str(path), n, "'text' must be a non-empty string")
            examples.append(Example(text=text, text_pair=row.get("text_pair"), label=row.get("label"),
                                    source=f"{path}:{n}"))
    if not examples:
        raise ValueError(f"transfer set {path} is empty")
    if "key" not in meta:
        meta["key"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return examples, meta


def build_transfer_set(examples: list[Example], method: str, *, copies: int = 20, seed: int = 0,
                       subset: int | None = None, pair_sides: str = "both", output: str | Path | None = None,
                       progress: bool = True, **params) -> tuple[list[Example], dict]:
    """Augment ``examples`` with the registered ``method``; write the file when ``output`` is given."""
    import time

    augmenter = build_augmenter(method, **params)  # options checked before any work
    start = time.perf_counter()
    out = augment_examples(examples, augmenter, copies=copies, seed=seed, subset=subset, pair_sides=pair_sides,
                           progress=progress)
    seconds = time.perf_counter() - start
    meta = {"method": method, "params": params, "copies": copies, "seed": seed, "subset": subset,
            "pair_sides": pair_sides, "originals": len(examples), "seconds": round(seconds, 3),
            "augmented_per_s": round((len(out) - len(examples)) / seconds, 1) if seconds > 0 else None}
    if output is not None:
        write_transfer_set(output, out, meta)
        meta = json.loads(meta_path(Path(output)).read_text())
    return out, meta
