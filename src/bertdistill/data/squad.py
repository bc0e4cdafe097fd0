"""Extractive question answering data: SQuAD v1.1 JSON, JSON lines, and ``hub:squad``.

* ``.json``: the official SQuAD layout, ``{"data": [{"title", "paragraphs": [{"context",
  "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}``;
* ``.jsonl`` / ``.ndjson``: one question a line, ``{"context", "question", "answers":
  [{"text", "answer_start"}], "id"}`` (``id`` optional: ``FILE:LINE`` then), or the hub's
  ``"answers": {"text": [...], "answer_start": [...]}``;
* ``hub:ID``: a Hugging Face data set with SQuAD's columns (``hub:squad``), through ``datasets``.

A folder holds one file per split whose name starts with ``train``, ``dev`` / ``validation`` or
``test`` (``train-subset-v1.1.json``, ``dev-v1.1.json``); a single file is the ``train`` split
unless its name starts with one of the others. Every question is checked as it is read: a
missing or empty field, an ``answer_start`` that does not point at its answer's text, a
repeated id are one DataError naming the file (and line) and the question id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .errors import DataError
from .examples import Answer, Example, TaskSpec
from .tabular import BadRows, numbered_lines, require

SPLIT_PREFIXES = {"train": ("train",), "dev": ("dev", "validation"), "test": ("test",)}
EXTENSIONS = (".json", ".jsonl", ".ndjson")


def read_squad(spec: TaskSpec, path: Path, bad: BadRows, wanted=None) -> dict[str, list[Example]]:
    """The splits of a SQuAD file or folder (see the module)."""
    files = split_files(require(path))
    if wanted is not None:
        missing = sorted(set(wanted) - set(files))
        if missing:
            raise DataError(path, None, f"no {missing} split here (found {sorted(files)})")
        files = {s: f for s, f in files.items() if s in wanted}
    return {split: read_squad_file(file, bad) for split, file in files.items()}


def split_files(path: Path) -> dict[str, Path]:
    """split -> file: a folder's files by their name's prefix; one file is its own split."""
    if path.is_file():
        return {_split_of(path) or "train": path}
    found: dict[str, list[Path]] = {}
    for file in sorted(path.iterdir()):
        split = _split_of(file)
        if split and file.is_file() and file.suffix.lower() in EXTENSIONS:
            found.setdefault(split, []).append(file)
    if not found:
        raise DataError(path, None, "no SQuAD files here: expected train*.json, dev*.json (or "
                                    "validation*), test*.json, or the same as .jsonl")
    for split, files in found.items():
        if len(files) > 1:
            raise DataError(path, None, f"{len(files)} files for the {split!r} split "
                                        f"({', '.join(f.name for f in files)}); keep one")
    return {split: files[0] for split, files in found.items()}


def _split_of(file: Path) -> str | None:
    name = file.name.lower()
    return next((split for split, prefixes in SPLIT_PREFIXES.items() if name.startswith(prefixes)), None)


def read_squad_file(path: Path, bad: BadRows) -> list[Example]:
    """The questions of one file: SQuAD JSON, or JSON lines by the extension."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(path, bad)
    else:
        rows = _json_rows(path)
    examples = []
    seen: set[str] = set()
    for line, row in rows:
        try:
            example = question_example(row, path, line)
            if example.id in seen:
                raise DataError(path, line, f"question {example.id!r}: the id is used by another question")
            seen.add(example.id)
            examples.append(example)
        except DataError as err:
            bad.handle(err)
    if not examples:
        raise DataError(path, None, "no questions")
    return examples


def _json_rows(path: Path) -> Iterable[tuple[int | None, dict]]:
    """One dict per question of an official SQuAD file (context, question, answers, id)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise DataError(path, None, f"not UTF-8 text: {err}") from None
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"not valid JSON: {err.msg} (column {err.colno})") from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise DataError(path, None, 'not a SQuAD file: no "data" list at the top (for one question a line, '
                                    "name the file .jsonl)")
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(path, None, f'article {a} ({_title(article)}): no "paragraphs" list')
        for p, paragraph in enumerate(paragraphs):
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list):
                raise DataError(path, None, f'article {a} ({_title(article)}), paragraph {p}: no "qas" list')
            for qa in qas:
                row = dict(qa) if isinstance(qa, dict) else {"question": qa}
                row["context"] = paragraph.get("context")
                if "id" not in row:
                    row["id"] = None  # a missing id is an error naming the article and paragraph
                    row["_where"] = f"article {a} ({_title(article)}), paragraph {p}"
                yield None, row


def _title(article) -> str:
    return repr(article.get("title")) if isinstance(article, dict) and article.get("title") else "no title"


def _jsonl_rows(path: Path, bad: BadRows) -> Iterable[tuple[int, dict]]:
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            bad.handle(DataError(path, number, f"not valid JSON: {err.msg} (column {err.colno})"))
            continue
        if not isinstance(row, dict):
            bad.handle(DataError(path, number, f"expected a JSON object, got {type(row).__name__}"))
            continue
        row.setdefault("id", f"{path.name}:{number}")
        yield number, row


def question_example(row: dict, path, line: int | None) -> Example:
    """A checked QA Example from a dict with ``id``, ``question``, ``context`` and ``answers``."""
    qid = row.get("id")
    if qid is None or (isinstance(qid, str) and not qid.strip()):
        raise DataError(path, line, f"{row.get('_where', 'a question')} has no id")
    qid = str(qid)
    who = f"question {qid!r}"
    context = _text(row, "context", path, line, who)
    question = _text(row, "question", path, line, who)
    answers = _answers(row.get("answers"), context, path, line, who)
    source = f"{path}:{line}" if line is not None else str(path)
    return Example(question, context, answers, source, qid)


def _text(row: dict, field: str, path, line, who: str) -> str:
    if field not in row or row[field] is None:
        raise DataError(path, line, f"{who}: no {field!r} field")
    value = row[field]
    if not isinstance(value, str):
        raise DataError(path, line, f"{who}: {field!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(path, line, f"{who}: empty {field}")
    return value


def _answers(raw, context: str, path, line, who: str) -> list[Answer]:
    if raw is None:
        raise DataError(path, line, f"{who}: no 'answers' field")
    if isinstance(raw, dict):  # the hub's columnar form: {"text": [...], "answer_start": [...]}
        texts, starts = raw.get("text"), raw.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise DataError(path, line, f"{who}: 'answers' needs lists 'text' and 'answer_start' of one length")
        raw = [{"text": t, "answer_start": s} for t, s in zip(texts, starts)]
    if not isinstance(raw, list):
        raise DataError(path, line, f"{who}: 'answers' must be a list, got {type(raw).__name__}")
    if not raw:
        raise DataError(path, line, f"{who}: no answers (unanswerable questions, as in SQuAD 2.0, are not "
                                    "supported)")
    answers = []
    for n, item in enumerate(raw, 1):
        what = f"{who}, answer {n}"
        if not isinstance(item, dict):
            raise DataError(path, line, f"{what}: expected an object with 'text' and 'answer_start'")
        text, start = item.get("text"), item.get("answer_start")
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, line, f"{what}: no 'text' (or an empty one)")
        if isinstance(start, bool) or not isinstance(start, int):
            raise DataError(path, line, f"{what}: 'answer_start' must be a character offset (a whole "
                                        f"number), got {start!r}")
        found = context[start:start + len(text)] if 0 <= start <= len(context) else ""
        if found != text:
            raise DataError(path, line, f"{what}: answer_start {start} does not point at its text {text!r} "
                                        f"(the context has {found!r} there)")
        answers.append(Answer(text, start))
    return answers


def read_squad_hub(spec: TaskSpec, data: str, bad: BadRows, wanted=None, **columns) -> dict[str, list[Example]]:
    """A hub data set with SQuAD's columns (``id``, ``context``, ``question``, ``answers``)."""
    from .hub import read_hub_splits

    given = sorted(k for k, v in columns.items() if v is not None)
    if given:
        raise ValueError(f"task {spec.name!r} reads SQuAD's own columns; it does not take "
                         f"{', '.join('--' + g.replace('_', '-') for g in given)}")
    return read_hub_splits(data, bad, wanted,
                           lambda row, source, i, split: question_example(dict(row), source, i), unit="questions")
