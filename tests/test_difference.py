"""`tsarena diff`: where two runs cannot match to the bit, how far apart they are and whether any verdict moved."""

import subprocess
import sys

import pandas as pd
import pytest

from tsarena.judging.difference import REPORT, Run, describe, differ

CHAMPION_LINE = "**{}** is registered as `tsarena-forecaster` (its served model) with alias `champion`: the SPA test rejects."


def workspace(root, shift: float = 0.0, holm_lstm: float = 0.001, order=("lstm", "ar", "random_walk"),
              champion: str | None = "lstm"):
    rows = [{"model": m, "fold": 1, "seed": 42, "row": r, "forecast": 0.001 * r + (shift if m == "lstm" else 0)}
            for m in ("lstm", "ar", "random_walk") for r in range(5)]
    (root / "data/eval").mkdir(parents=True)
    (root / "data/reports").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(root / "data/eval/forecasts.parquet")
    p = {"lstm": holm_lstm, "ar": 0.03, "random_walk": None}
    pd.DataFrame([{"model": m, "test_rmse": 0.01 + 0.001 * i + (shift if m == "lstm" else 0), "dm_pvalue_holm": p[m]}
                  for i, m in enumerate(order)]).to_csv(root / "data/reports/comparison.csv", index=False)
    text = CHAMPION_LINE.format(champion) if champion else "the `champion` alias was left where it was"
    (root / REPORT).write_text(f"# Comparison\n\n{text}\n")
    return root


def test_the_same_run_differs_in_nothing(tmp_path):
    a = Run.read(workspace(tmp_path / "a"))
    found = differ(a, Run.read(workspace(tmp_path / "b")), 0.05)
    assert found.verdicts == [] and found.metrics == {} and set(found.forecasts.values()) == {0.0}
    assert describe(found, 0)[-1].startswith("verdict   unchanged")


def test_numbers_that_moved_are_measured_and_verdicts_that_moved_are_named(tmp_path):
    a = Run.read(workspace(tmp_path / "a"))
    tiny = differ(a, Run.read(workspace(tmp_path / "b", shift=1e-13)), 0.05)
    assert tiny.forecasts["lstm"] == pytest.approx(1e-13, rel=0.01) and tiny.verdicts == []
    assert tiny.within(1e-12) and not tiny.within(0)
    assert set(tiny.metrics) == {"lstm"}
    moved = differ(a, Run.read(workspace(tmp_path / "c", holm_lstm=0.2, order=("ar", "lstm", "random_walk"),
                                         champion=None)), 0.05)
    assert any(v.startswith("the ranking changed: lstm > ar") for v in moved.verdicts)
    assert "lstm was significant at alpha 0.05 (Holm-adjusted DM) and is not any more" in moved.verdicts
    assert "the champion changed: lstm became none" in moved.verdicts


def test_the_command_s_exit_says_what_changed_and_a_missing_run_is_one_line(tmp_path):
    a, b = workspace(tmp_path / "a"), workspace(tmp_path / "b", shift=1e-13)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tsarena.cli", "diff", *map(str, args)], capture_output=True, text=True)

    assert run(a, a).returncode == 0
    assert run(a, b).returncode == 2 and run(a, b, "--tolerance", "1e-12").returncode == 0
    assert run(a, workspace(tmp_path / "c", champion="ar")).returncode == 3
    missing = run(a, tmp_path / "nowhere")
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"error: no data/eval/forecasts.parquet: not a workspace after dvc repro ({tmp_path / 'nowhere'})"]
