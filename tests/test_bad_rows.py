"""Rows a reader must not take as they are: huge CSV fields, empty texts, a column named twice."""

from __future__ import annotations

import csv

import pytest

from bertdistill.cli import main
from bertdistill.data import DataError, load_task
from bertdistill.data import tabular


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_a_5_mb_csv_field_is_read_whole(tmp_path):
    review = "word " * (1024 * 1024)  # 5 MiB, 40 times the csv module's default limit
    assert len(review) == 40 * 131072
    path = _write(tmp_path / "train.csv", f'text,label\n"{review}",pos\nshort one,neg\n')
    data = load_task("csv", path)
    texts = [e.text for e in data.split("train")]
    assert texts == [review.strip(), "short one"]
    assert csv.field_size_limit() == 131072  # the module's limit is put back after reading


def test_a_field_over_the_limit_names_file_and_line_and_can_be_skipped(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(tabular, "CSV_FIELD_LIMIT", 1000)  # the same fault with a small field
    path = _write(tmp_path / "train.csv",
                  "text,label\nfine,pos\n\"" + "x" * 5000 + "\",neg\nalso fine,neg\nlast,pos\n")
    with pytest.raises(DataError) as info:
        load_task("csv", path)
    assert info.value.path == str(path) and info.value.line == 3
    assert "unreadable CSV record" in str(info.value) and "field limit" in str(info.value)
    data = load_task("csv", path, skip_bad_rows=True)
    assert data.skipped == 1
    assert [e.text for e in data.split("train")] == ["fine", "also fine", "last"]
    assert "skipped 1 bad rows" in caplog.text


def test_cli_reports_an_unreadable_record_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tabular, "CSV_FIELD_LIMIT", 100)
    path = _write(tmp_path / "reviews.csv", "text,label\n\"" + "y" * 500 + "\",neg\nok,pos\n")
    code = main(["embed", "--model", "minilm-l6", "--data", str(path)])  # the data is read before the model
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{path}:2: unreadable CSV record" in err


@pytest.mark.parametrize("fmt, text, line", [
    ("csv", "text,label\ngood film,pos\n   ,neg\nbad film,neg\n", 3),
    ("tsv", "text\tlabel\ngood film\tpos\n \tneg\nbad film\tneg\n", 3),
    ("jsonl", '{"text": "good film", "label": "pos"}\n{"text": "", "label": "neg"}\n'
              '{"text": "bad film", "label": "neg"}\n', 2),
])
def test_an_empty_text_is_refused_with_its_line_or_skipped_and_counted(tmp_path, fmt, text, line):
    path = _write(tmp_path / f"train.{fmt}", text)
    with pytest.raises(DataError, match="empty text.*--skip-bad-rows") as info:
        load_task(fmt, path)
    assert info.value.path == str(path) and info.value.line == line
    data = load_task(fmt, path, skip_bad_rows=True)
    assert data.skipped == 1 and [e.text for e in data.split("train")] == ["good film", "bad film"]


def test_an_empty_second_text_of_a_pair_is_refused(tmp_path):
    path = _write(tmp_path / "train.csv", "a,b,label\nx,y,1\nx,,0\n")
    with pytest.raises(DataError, match="empty text pair") as info:
        load_task("csv", path, text_column="a", text_pair_column="b")
    assert info.value.line == 3


def test_an_unlabelled_test_row_with_no_text_is_refused_too(tmp_path):
    _write(tmp_path / "train.csv", "text,label\na,x\nb,y\n")
    _write(tmp_path / "test.csv", "id,text\n1,fine\n2,\n")
    with pytest.raises(DataError, match="empty text") as info:
        load_task("csv", tmp_path)
    assert info.value.path == str(tmp_path / "test.csv") and info.value.line == 3


@pytest.mark.parametrize("fmt, header", [("csv", "text,label,text"), ("tsv", "text\tlabel\ttext")])
def test_a_column_named_twice_is_refused_naming_file_and_column(tmp_path, fmt, header):
    sep = "," if fmt == "csv" else "\t"
    path = _write(tmp_path / f"train.{fmt}", f"{header}\n" + sep.join(["a", "x", "b"]) + "\n")
    with pytest.raises(DataError, match=r"names column 'text' twice \(columns 1 and 3\)") as info:
        load_task(fmt, path, skip_bad_rows=True)  # a header is not a row: never skipped
    assert info.value.path == str(path) and info.value.line == 1


def test_blank_header_cells_are_not_duplicates(tmp_path):
    path = _write(tmp_path / "train.csv", "text,label,,\na,x,,\nb,y,,\n")  # a spreadsheet's trailing commas
    assert [e.text for e in load_task("csv", path).split("train")] == ["a", "b"]


def test_a_json_key_given_twice_is_a_bad_row(tmp_path):
    path = _write(tmp_path / "train.jsonl",
                  '{"text": "a", "label": "x"}\n{"text": "b", "text": "c", "label": "y"}\n'
                  '{"text": "d", "label": "y"}\n')
    with pytest.raises(DataError, match="names key 'text' twice") as info:
        load_task("jsonl", path)
    assert info.value.line == 2
    data = load_task("jsonl", path, skip_bad_rows=True)
    assert data.skipped == 1 and [e.text for e in data.split("train")] == ["a", "d"]
