"""Hugging Face hub datasets: ``data="hub:ID"``, read with ``datasets`` (imported lazily).

``hub:glue/sst2`` means ``load_dataset("nyu-mll/glue", "sst2")``; any other id is
``hub:REPO`` or ``hub:REPO:CONFIG``. Hub splits map to ours (``validation`` -> ``dev``,
MNLI's ``validation_matched`` -> ``dev``, ...); columns default to the task's hub columns.
Hub label ids are used as they are (GLUE and CoNLL-2003 order their labels as we do);
``-1`` in a test split means "no label". ``source`` is ``hub:REPO/SPLIT:ROW``.
"""

from __future__ import annotations

from .conll import to_iob2
from .errors import DataError
from .examples import Example, TaskSpec
from .tabular import BadRows, label_value, require_text

SPLITS = {
    "train": "train",
    "validation": "dev",
    "test": "test",
    "validation_matched": "dev",
    "validation_mismatched": "dev_mismatched",
    "test_matched": "test",
    "test_mismatched": "test_mismatched",
}

# task -> (text, text pair, label) columns of its usual hub dataset
COLUMNS = {
    "sst2": ("sentence", None, "label"),
    "cola": ("sentence", None, "label"),
    "qnli": ("question", "sentence", "label"),
    "mnli": ("premise", "hypothesis", "label"),
    "qqp": ("question1", "question2", "label"),
    "conll2003": ("tokens", None, "ner_tags"),
    "rotten_tomatoes": ("text", None, "label"),
}
PAIR_COLUMNS = ("sentence1", "sentence2", "label")  # mrpc, rte, wnli, stsb


def parse_hub_id(data: str) -> tuple[str, str | None]:
    """``hub:glue/sst2`` -> ("nyu-mll/glue", "sst2"); ``hub:REPO[:CONFIG]`` -> (REPO, CONFIG)."""
    ident = data.removeprefix("hub:").strip()
    if not ident:
        raise DataError(data, None, "empty hub id: write hub:REPO or hub:REPO:CONFIG")
    repo, _, config = ident.partition(":")
    owner, _, name = repo.rpartition("/")
    if not config and owner in ("glue", "nyu-mll/glue"):
        return "nyu-mll/glue", name
    return repo, config or None


def load_dataset_dict(data: str):
    """``datasets.load_dataset`` for a ``hub:`` id, with clear errors."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            data, None, "hub ids need the `datasets` package: pip install 'bertdistill[hub]'"
        ) from None
    repo, config = parse_hub_id(data)
    try:
        return datasets.load_dataset(repo, config)
    except Exception as err:  # offline, unknown id, bad config: all reported the same way
        raise DataError(
            data, None,
            f"could not load {repo!r} (config {config!r}) from the Hugging Face hub: "
            f"{type(err).__name__}: {err}. Offline? Pass a local directory as data instead.",
        ) from err


def read_hub(
    spec: TaskSpec,
    data: str,
    bad: BadRows,
    wanted=None,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
) -> dict[str, list[Example]]:
    """The splits of a hub dataset as Examples of ``spec``."""
    defaults = COLUMNS.get(spec.name, PAIR_COLUMNS)
    cols = (
        text_column or defaults[0],
        text_pair_column or (defaults[1] if spec.pair else None),
        label_column or defaults[2],
    )
    return read_hub_splits(data, bad, wanted,
                           lambda row, source, i, split: _example(spec, row, cols, source, i, split))


def read_hub_splits(data: str, bad: BadRows, wanted, make_example, unit: str = "rows") -> dict[str, list[Example]]:
    """Each split of a hub data set (the ``wanted`` ones, or all) as the Examples that
    ``make_example(row, source, index, split)`` builds; a bad row goes to ``bad``."""
    repo = parse_hub_id(data)[0]
    splits = {}
    for hub_split, rows in load_dataset_dict(data).items():
        split = SPLITS.get(hub_split, hub_split)
        if wanted is not None and split not in wanted:
            continue
        source = f"hub:{repo}/{hub_split}"
        examples = []
        for i, row in enumerate(rows):
            try:
                examples.append(make_example(row, source, i, split))
            except DataError as err:
                bad.handle(err)
        if not examples:
            raise DataError(source, None, f"the {split!r} split has no {unit}")
        splits[split] = examples
    missing = sorted(set(wanted or ()) - set(splits))
    if missing:
        raise DataError(data, None, f"no {missing} split on the hub")
    return splits


def _example(spec: TaskSpec, row: dict, cols: tuple, source: str, i: int, split: str) -> Example:
    for column in cols:
        if column is not None and column not in row:
            raise DataError(source, i, f"no column {column!r}; the columns are {sorted(row)}")
    text_col, pair_col, label_col = cols
    text = row[text_col]
    if spec.kind == "token_classification":
        text = list(text)
    else:
        text = require_text(None if text is None else str(text), source, i)
    pair = None if pair_col is None else require_text(
        None if row[pair_col] is None else str(row[pair_col]), source, i, "text pair")
    return Example(text, pair, _label(spec, row[label_col], source, i, split), f"{source}:{i}")


def _label(spec: TaskSpec, raw, source: str, i: int, split: str):
    """A hub label value as ours: ids as they are, names looked up, -1 in test = None."""
    if raw == -1 and split.startswith("test"):
        return None
    if spec.kind == "token_classification":
        n = len(spec.labels)
        tags = [spec.labels[t] if isinstance(t, int) and 0 <= t < n else t for t in raw]
        unknown = [t for t in tags if t not in spec.labels]
        if unknown:
            raise DataError(source, i, f"unknown tag {unknown[0]!r}; known tags: {spec.labels}")
        return [spec.labels.index(t) for t in to_iob2(tags)]
    if spec.kind == "classification" and isinstance(raw, int) and not isinstance(raw, bool):
        if not 0 <= raw < len(spec.labels):
            raise DataError(source, i, f"label id {raw} is not in 0..{len(spec.labels) - 1}")
        return raw
    return label_value(spec, raw, source, i)
