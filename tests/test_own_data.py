"""A user's own data: one file, the format from its extension, a seeded dev split, data flags."""

from __future__ import annotations

import pytest

from bertdistill.data import DataError, load_task
from bertdistill.data.tasks import infer_task


def _csv(path, n=40, label="sentiment"):
    rows = [f"text,{label}"] + [f"review number {i},{'pos' if i % 3 else 'neg'}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_one_csv_file_gets_a_seeded_dev_split_that_is_printed(tmp_path, capsys):
    data = _csv(tmp_path / "reviews.csv")
    first = load_task(data=str(data), label_column="sentiment", validation_split=0.1)
    err = capsys.readouterr().err
    assert "no dev split in" in err and "4 of 40 train rows (10%, seed 42)" in err and "--validation-split" in err
    assert first.task.name == "csv" and first.task.labels == ["neg", "pos"]
    assert len(first.splits["train"]) == 36 and len(first.splits["dev"]) == 4
    train_texts = {e.text for e in first.splits["train"]}
    dev_texts = {e.text for e in first.splits["dev"]}
    assert not train_texts & dev_texts and len(train_texts | dev_texts) == 40
    again = load_task("csv", str(data), label_column="sentiment", validation_split=0.1)
    assert [e.text for e in again.splits["dev"]] == [e.text for e in first.splits["dev"]]
    other_seed = load_task("csv", str(data), label_column="sentiment", validation_split=0.1, split_seed=7)
    assert {e.text for e in other_seed.splits["dev"]} != dev_texts
    # asking only for dev carves the same rows
    only_dev = load_task(data=str(data), label_column="sentiment", validation_split=0.1, splits=["dev"])
    assert list(only_dev.splits) == ["dev"] and {e.text for e in only_dev.splits["dev"]} == dev_texts


def test_no_validation_split_means_no_dev_and_a_hint(tmp_path):
    data = _csv(tmp_path / "reviews.csv")
    task = load_task(data=str(data), label_column="sentiment")
    assert list(task.splits) == ["train"]
    with pytest.raises(ValueError, match="--validation-split"):
        task.split("dev")
    with pytest.raises(ValueError, match="--validation-split must be a fraction"):
        load_task(data=str(data), label_column="sentiment", validation_split=1.5)
    tiny = tmp_path / "one.csv"
    tiny.write_text("text,label\nonly row,a\n")
    with pytest.raises(DataError, match="too few to hold out"):
        load_task(data=str(tiny), validation_split=0.1)


def test_folder_with_validation_file_and_format_inference(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "good", "label": "p"}\n{"text": "bad", "label": "n"}\n')
    (folder / "validation.jsonl").write_text('{"text": "fine", "label": "p"}\n')
    assert infer_task(folder) == "jsonl"
    task = load_task(data=str(folder), validation_split=0.1)  # a dev file exists: nothing is carved
    assert [e.text for e in task.splits["dev"]] == ["fine"] and len(task.splits["train"]) == 2
    assert infer_task(_csv(tmp_path / "r.csv")) == "csv"
    (tmp_path / "r.tsv").write_text("sentence\tlabel\nx\t1\n")
    assert infer_task(tmp_path / "r.tsv") == "tsv"


def test_format_inference_errors_name_the_flag(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ValueError, match=r"--data .*notes.txt.*'.txt'.*--task"):
        load_task(data=str(tmp_path / "notes.txt"))
    with pytest.raises(ValueError, match="needs --task"):
        load_task(data="hub:someone/reviews")
    with pytest.raises(DataError, match="missing.csv: no such file"):
        load_task(data=str(tmp_path / "missing.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no train/dev/validation/test"):
        load_task(data=str(tmp_path / "empty"))


def test_labels_kind_and_delimiter_flags(tmp_path):
    data = tmp_path / "scores.csv"
    data.write_text("review;score\nfine;3.5\nawful;0.5\ngreat;4.75\n")
    task = load_task(data=str(data), delimiter=";", text_column="review", label_column="score",
                     task_kind="regression")
    assert task.task.kind == "regression" and [e.label for e in task.splits["train"]] == [3.5, 0.5, 4.75]
    labelled = _csv(tmp_path / "reviews.csv")
    fixed = load_task(data=str(labelled), label_column="sentiment", labels="pos,neg")
    assert fixed.task.labels == ["pos", "neg"] and fixed.splits["train"][0].label == 1  # row 0 is "neg"
    with pytest.raises(DataError, match=r"'pos' is not one of the known labels \['neg', 'x'\] \(--labels\)"):
        load_task(data=str(labelled), label_column="sentiment", labels=["neg", "x"])
    with pytest.raises(DataError, match="no label column 'label'.*--label-column"):
        load_task(data=str(labelled))
    with pytest.raises(ValueError, match="--task-kind must be"):
        load_task(data=str(labelled), label_column="sentiment", task_kind="ranking")
