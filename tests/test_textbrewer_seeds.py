"""benchmarks/textbrewer_seeds.py: the seed summary and Welch's interval of the dev difference."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "textbrewer_seeds.py"


@pytest.fixture(scope="module")
def seeds():
    spec = importlib.util.spec_from_file_location("textbrewer_seeds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_welch_against_hand_computed_values(seeds):
    # ours: mean 2, variance 2 (n 2); theirs: mean 4, variance 4 (n 3)
    # se^2 = 2/2 + 4/3 = 7/3; df = (7/3)^2 / (1/1 + (4/3)^2/2) = 49/17
    w = seeds.welch([1.0, 3.0], [2.0, 4.0, 6.0])
    assert w["difference"] == pytest.approx(-2.0)
    assert w["t"] == pytest.approx(-2.0 / math.sqrt(7 / 3))
    assert w["df"] == pytest.approx(49 / 17)
    # t quantile at 0.975 for df 49/17, from scipy's own Welch test
    from scipy.stats import ttest_ind

    ci = ttest_ind([1.0, 3.0], [2.0, 4.0, 6.0], equal_var=False).confidence_interval(0.95)
    assert w["interval"] == pytest.approx([ci.low, ci.high])
    assert w["interval"][0] < -2.0 < w["interval"][1]


def test_welch_needs_two_values_a_side(seeds):
    with pytest.raises(ValueError, match="at least two"):
        seeds.welch([0.8], [0.8, 0.9])


def _result(path: Path, seed: int, tb: float, ours: float) -> str:
    path.write_text(json.dumps({
        "benchmark": "textbrewer_compare", "settings": {"seed": seed},
        "runs": {"tb_dynamic": {"dev_accuracy": tb, "train_seconds": 1000.0},
                 "ours_cache": {"dev_accuracy": ours, "train_seconds": 200.0},
                 "ours_live": {"dev_accuracy": ours, "train_seconds": 250.0 + 250.0 * seed}},
        "end_to_end": {"textbrewer_seconds": 1000.0, "bertdistill_seconds": 250.0, "speedup": 4.0,
                       "bertdistill_cache_build_seconds": 50.0},
    }))
    return str(path)


def test_summary_sets_each_run_against_textbrewer(seeds, tmp_path):
    files = [_result(tmp_path / f"s{i}.json", i, tb, ours)
             for i, (tb, ours) in enumerate([(0.88, 0.87), (0.89, 0.88), (0.87, 0.87)])]
    s = seeds.summarise(files)
    assert s["seeds"] == [0, 1, 2]
    assert s["runs"]["ours_cache"]["dev_accuracy"]["mean"] == pytest.approx(2.62 / 3)
    w = s["dev_against_textbrewer"]["ours_cache"]
    assert w["difference"] == pytest.approx((2.62 - 2.64) / 3)
    assert set(s["dev_against_textbrewer"]) == {"ours_cache", "ours_live"}  # TextBrewer is not set against itself
    # TextBrewer's loop (1000 s) over each run's loop, seed by seed: live 250, 500, 750 s -> 4, 2, 4/3
    live = s["textbrewer_loop_over_this_loop"]["ours_live"]
    assert live["values"] == pytest.approx([4.0, 2.0, 4 / 3])
    assert live["mean"] == pytest.approx((4 + 2 + 4 / 3) / 3)
    assert s["textbrewer_loop_over_this_loop"]["ours_cache"]["mean"] == pytest.approx(5.0)
    assert "tb_dynamic" not in s["textbrewer_loop_over_this_loop"]
