"""GLUE readers: the real staged files (MANIFEST counts), small layouts and every error path."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest

from bertdistill.data import DataError, load_task
from bertdistill.paths import shared_data_dir


@pytest.fixture(scope="module")
def shared() -> Path:
    path = shared_data_dir()
    if not (path / "MANIFEST.md").exists():
        pytest.skip(f"shared benchmark data not found at {path} (set BERTDISTILL_DATA)")
    return path


def label_counts(examples) -> dict:
    return dict(Counter(e.label for e in examples))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- real files -----------------------------------------------------------------------------


def test_sst2_counts_labels_and_text(shared):
    data = load_task("sst2", shared / "sst2" / "glue")
    assert data.task.labels == ["0", "1"] and data.task.main_metric == "accuracy"
    train, dev, test = data.split("train"), data.split("dev"), data.split("test")
    assert (len(train), len(dev)) == (67_349, 872)
    assert label_counts(train) == {0: 29_780, 1: 37_569}
    assert label_counts(dev) == {0: 428, 1: 444}
    # the labelled derived test file wins over GLUE's unlabelled test.tsv
    assert len(test) == 1_821 and label_counts(test) == {0: 912, 1: 909}
    assert train[0].text == "hide new secretions from the parental units"  # space before TAB gone
    assert train[0].source == f"{shared / 'sst2' / 'glue' / 'train.tsv'}:2"
    assert data.skipped == 0


def test_sst2_default_data_is_the_shared_copy(shared):
    data = load_task("SST-2", splits=["dev"])
    assert list(data.splits) == ["dev"] and len(data.splits["dev"]) == 872


def test_sst2_unlabelled_test_without_the_derived_file(shared, tmp_path):
    for name in ("dev.tsv", "test.tsv"):
        shutil.copy(shared / "sst2" / "glue" / name, tmp_path / name)
    data = load_task("sst2", tmp_path)
    assert sorted(data.splits) == ["dev", "test"]
    assert len(data.splits["test"]) == 1_821
    assert all(e.label is None for e in data.splits["test"])
    assert data.splits["test"][0].text == "uneasy mishmash of styles and genres ."


def test_cola_headerless_four_columns(shared):
    data = load_task("cola", shared / "glue" / "CoLA")
    assert data.task.metrics == ("matthews", "accuracy")
    assert len(data.split("train")) == 8_551 and len(data.split("dev")) == 1_043
    assert label_counts(data.split("train")) == {0: 2_528, 1: 6_023}
    first = data.split("train")[0]
    assert first.text.startswith("Our friends won't buy this analysis")
    assert first.source.endswith("train.tsv:1")  # no header: line 1 is data


def test_mrpc_bom_header_and_labelled_test(shared):
    data = load_task("mrpc", shared / "glue" / "MRPC")
    sizes = {s: len(e) for s, e in data.splits.items()}
    assert sizes == {"train": 3_668, "dev": 408, "test": 1_725}
    assert label_counts(data.split("train")) == {1: 2_474, 0: 1_194}
    assert label_counts(data.split("dev")) == {1: 279, 0: 129}
    assert label_counts(data.split("test")) == {1: 1_147, 0: 578}
    assert data.split("test")[0].source.endswith("msr_paraphrase_test.txt:2")
    first = data.split("train")[0]
    assert first.text.startswith("Amrozi accused his brother")
    assert first.text_pair.startswith("Referring to him as only")


def test_rte_pairs_and_unlabelled_test(shared):
    data = load_task("rte", shared / "glue" / "RTE")
    assert data.task.labels == ["entailment", "not_entailment"] and data.task.pair
    assert len(data.split("train")) == 2_490 and len(data.split("dev")) == 277
    assert label_counts(data.split("train")) == {0: 1_249, 1: 1_241}
    assert len(data.split("test")) == 3_000
    assert {e.label for e in data.split("test")} == {None}


def test_stsb_regression_scores(shared):
    data = load_task("stsb", shared / "glue" / "STS-B")
    sizes = {s: len(e) for s, e in data.splits.items()}
    assert sizes == {"train": 5_749, "dev": 1_500, "test": 1_379}
    scores = [e.label for e in data.split("train")]
    assert all(isinstance(s, float) and 0.0 <= s <= 5.0 for s in scores)
    assert sum(scores) / len(scores) == pytest.approx(2.701, abs=5e-4)
    test = [e.label for e in data.split("test")]
    assert sum(test) / len(test) == pytest.approx(2.608, abs=5e-4)
    assert data.split("train")[0].text_pair == "An air plane is taking off."


def test_qnli_dev(shared):
    data = load_task("qnli", shared / "glue" / "QNLI")
    assert len(data.split("dev")) == 5_463
    assert label_counts(data.split("dev")) == {0: 2_702, 1: 2_761}
    assert "train" not in data.splits


# ---- small layouts --------------------------------------------------------------------------


def test_qqp_layout(tmp_path):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    rows = '1\t2\t3\tHow do "I\tHow can I?\t1\n4\t5\t6\tA?\tB?\t0\n'  # unbalanced quote
    write(tmp_path / "train.tsv", header + rows)
    write(tmp_path / "dev.tsv", header + "7\t8\t9\tC?\tD?\t1\n")
    write(tmp_path / "test.tsv", "id\tquestion1\tquestion2\n0\tE?\tF?\n")
    data = load_task("qqp", tmp_path)
    assert data.task.metrics == ("f1", "accuracy")
    train = data.split("train")
    assert [(e.text, e.text_pair, e.label) for e in train] == [
        ('How do "I', "How can I?", 1),
        ("A?", "B?", 0),
    ]
    assert data.split("test")[0].label is None and data.split("test")[0].text_pair == "F?"


def test_mnli_layout_matched_and_mismatched(tmp_path):
    cols = "index promptID pairID genre sentence1 sentence2 label1 gold_label".split()
    header = "\t".join(cols) + "\n"

    def row(i, label):
        return f"{i}\tp\tq\tfiction\tPremise {i}.\tHypothesis {i}.\t{label}\t{label}\n"

    write(tmp_path / "train.tsv", header + row(0, "neutral") + row(1, "contradiction"))
    write(tmp_path / "dev_matched.tsv", header + row(2, "entailment"))
    write(tmp_path / "dev_mismatched.tsv", header + row(3, "contradiction") + row(4, "neutral"))
    write(tmp_path / "test_matched.tsv", "\t".join(cols[:6]) + "\n" + "5\tp\tq\tg\tP.\tH.\n")
    data = load_task("mnli", tmp_path)
    assert data.task.labels == ["entailment", "neutral", "contradiction"]
    assert sorted(data.splits) == ["dev", "dev_mismatched", "test", "train"]
    assert [e.label for e in data.split("train")] == [1, 2]
    assert [e.label for e in data.split("dev")] == [0]
    assert [e.label for e in data.split("dev_mismatched")] == [2, 1]
    dev = data.split("dev")[0]
    assert (dev.text, dev.text_pair) == ("Premise 2.", "Hypothesis 2.")
    assert data.split("test")[0].label is None


def test_cola_headerless_train_and_glue_test_with_header(tmp_path):
    write(tmp_path / "train.tsv", "gj04\t1\t\tGood.\ngj04\t0\t*\tBad good.\n")
    write(tmp_path / "test.tsv", "index\tsentence\n0\tMaybe.\n")
    data = load_task("cola", tmp_path)
    assert [(e.text, e.label) for e in data.split("train")] == [("Good.", 1), ("Bad good.", 0)]
    assert [(e.text, e.label) for e in data.split("test")] == [("Maybe.", None)]
    write(tmp_path / "train.tsv", "gj04\t1\tGood.\n")
    with pytest.raises(DataError, match="expected 4 columns, got 3") as info:
        load_task("cola", tmp_path)
    assert info.value.line == 1


def test_wnli_layout(tmp_path):
    header = "index\tsentence1\tsentence2\tlabel\n"
    write(tmp_path / "train.tsv", header + "0\tThe cat sat.\tIt sat.\t1\n1\tA.\tB.\t0\n")
    write(tmp_path / "dev.tsv", header + "0\tC.\tD.\t0\n")
    data = load_task("wnli", tmp_path)
    assert [e.label for e in data.split("train")] == [1, 0]
    assert data.split("train")[1].source == f"{tmp_path / 'train.tsv'}:3"


# ---- errors ---------------------------------------------------------------------------------

RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"


def test_wrong_column_count_names_file_line_and_counts(tmp_path):
    rows = "0\tA.\tB.\tentailment\n1\tC.\tnot_entailment\n"
    path = write(tmp_path / "train.tsv", RTE_HEADER + rows)
    with pytest.raises(DataError, match=r"expected 4 columns, got 3") as info:
        load_task("rte", tmp_path)
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert str(info.value).startswith(f"{path}:3: ")


def test_unknown_label_lists_known_labels(tmp_path):
    write(tmp_path / "train.tsv", RTE_HEADER + "0\tA.\tB.\tmaybe\n")
    with pytest.raises(DataError, match=r"'maybe'.*\['entailment', 'not_entailment'\]") as info:
        load_task("rte", tmp_path)
    assert info.value.line == 2


def test_header_only_file_is_an_empty_split(tmp_path):
    write(tmp_path / "train.tsv", RTE_HEADER + "0\tA.\tB.\tentailment\n")
    write(tmp_path / "dev.tsv", RTE_HEADER)
    with pytest.raises(DataError, match="'dev' split has no rows") as info:
        load_task("rte", tmp_path)
    assert info.value.path == str(tmp_path / "dev.tsv")


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(DataError, match="no such file or directory") as info:
        load_task("rte", tmp_path / "nowhere")
    assert info.value.path == str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="none of the split files"):
        load_task("rte", tmp_path)


def test_non_numeric_score(tmp_path):
    cols = "index genre filename year old_index source1 source2 sentence1 sentence2 score"
    header = cols.replace(" ", "\t") + "\n"
    for score in ("five", "nan"):
        write(tmp_path / "train.tsv", header + f"0\tg\tf\ty\t0\tn\tn\tA.\tB.\t{score}\n")
        with pytest.raises(DataError, match=f"score '{score}' is not a number"):
            load_task("stsb", tmp_path)


def test_label_column_missing_outside_test(tmp_path):
    write(tmp_path / "train.tsv", "index\tsentence1\tsentence2\n0\tA.\tB.\n")
    with pytest.raises(DataError, match="no label column 'label'"):
        load_task("rte", tmp_path)


def test_skip_bad_rows_counts_and_warns(tmp_path, caplog):
    rows = "0\tA.\tB.\tentailment\n1\tshort\n2\tC.\tD.\tunknown\n3\tE.\tF.\tnot_entailment\n"
    write(tmp_path / "train.tsv", RTE_HEADER + rows)
    with caplog.at_level(logging.WARNING, logger="bertdistill.data"):
        data = load_task("rte", tmp_path, skip_bad_rows=True)
    assert data.skipped == 2
    assert [e.label for e in data.split("train")] == [0, 1]
    assert "skipped 2 bad rows" in caplog.text


def test_all_rows_bad_is_still_an_error(tmp_path):
    write(tmp_path / "train.tsv", RTE_HEADER + "1\tshort\n")
    with pytest.raises(DataError, match="no rows .1 bad rows skipped"):
        load_task("rte", tmp_path, skip_bad_rows=True)


def test_splits_option(tmp_path):
    write(tmp_path / "train.tsv", RTE_HEADER + "0\tA.\tB.\tentailment\n")
    write(tmp_path / "dev.tsv", RTE_HEADER + "bad line\n")
    assert list(load_task("rte", tmp_path, splits=["train"]).splits) == ["train"]
    with pytest.raises(DataError, match="no 'test' split"):
        load_task("rte", tmp_path, splits=["test"])
    with pytest.raises(DataError, match="has no split"):
        load_task("rte", tmp_path, splits=["dev_mismatched"])


def test_glue_task_needs_a_directory(tmp_path):
    path = write(tmp_path / "train.tsv", RTE_HEADER + "0\tA.\tB.\tentailment\n")
    with pytest.raises(DataError, match="expected a GLUE task directory"):
        load_task("rte", path)
