"""How two runs of the arena differ, and whether any verdict does: for results that cannot match to the bit
(another CPU family, a GPU, `numerics.mode: native`), `tsarena diff A B` says by how much every forecast and
headline number moved and whether a rank, a significance call at `compare.alpha` or the champion changed.

A run is a workspace after `dvc repro` (a clone on another machine, a `dvc exp` checked out elsewhere): it is
read from its outputs only, `data/eval/forecasts.parquet` and `data/reports/comparison.{csv,md}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tsarena.core.errors import TsarenaError
from tsarena.judging.metrics import DM_PVALUE_HOLM, MCS_PVALUE, RMSE, SHARPE, SKILL_VS_RW

FORECASTS, TABLE, REPORT = "data/eval/forecasts.parquet", "data/reports/comparison.csv", "data/reports/comparison.md"
KEY = ["model", "fold", "seed", "row"]
HEADLINE = [str(m) for m in (RMSE, SKILL_VS_RW, DM_PVALUE_HOLM, MCS_PVALUE, SHARPE)]
_CHAMPION = re.compile(r"\*\*(\w+)\*\* is registered as .* with alias `champion`")


@dataclass
class Run:
    """What a run decided and forecast, read from its outputs."""

    where: Path
    forecasts: pd.DataFrame
    table: pd.DataFrame  # comparison.csv: one row per contestant, best-ranked first
    champion: str | None

    @classmethod
    def read(cls, root: Path) -> Run:
        for name in (FORECASTS, TABLE, REPORT):
            if not (root / name).is_file():
                raise TsarenaError(f"no {name}: not a workspace after dvc repro", str(root))
        found = _CHAMPION.search((root / REPORT).read_text())
        return cls(root, pd.read_parquet(root / FORECASTS, columns=[*KEY, "forecast"]),
                   pd.read_csv(root / TABLE).set_index("model"), found.group(1) if found else None)

    def significant(self, alpha: float) -> dict[str, bool]:
        p = self.table[str(DM_PVALUE_HOLM)]
        return {m: bool(v < alpha) for m, v in p.items() if pd.notna(v)}


@dataclass
class Difference:
    forecasts: dict[str, float]  # contestant -> the largest |forecast difference| over its rows
    metrics: dict[str, dict[str, tuple[float, float]]]  # contestant -> headline metric -> (a, b), where they differ
    verdicts: list[str] = field(default_factory=list)  # one sentence per verdict that changed

    def within(self, tolerance: float) -> bool:
        return all(v <= tolerance for v in self.forecasts.values())


def differ(a: Run, b: Run, alpha: float) -> Difference:
    """Forecasts joined on (model, fold, seed, row); a contestant or row only one run has is a verdict of its own."""
    verdicts = []
    if set(a.table.index) != set(b.table.index):
        verdicts.append(f"contestants differ: {sorted(set(a.table.index) ^ set(b.table.index))}")
    joined = a.forecasts.merge(b.forecasts, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    unmatched = joined[joined["_merge"] != "both"]
    if len(unmatched):
        verdicts.append(f"{len(unmatched)} forecast rows are in one run only (first: {unmatched.iloc[0][KEY].tolist()})")
    both = joined[joined["_merge"] == "both"]
    gaps = (both["forecast_a"] - both["forecast_b"]).abs().groupby(both["model"]).max()
    common = [m for m in a.table.index if m in b.table.index]
    metrics = {}
    for model in common:
        moved = {k: (float(a.table.at[model, k]), float(b.table.at[model, k])) for k in HEADLINE
                 if k in a.table and k in b.table and not _same(a.table.at[model, k], b.table.at[model, k])}
        if moved:
            metrics[model] = moved
    order_a, order_b = [m for m in a.table.index if m in common], [m for m in b.table.index if m in common]
    if order_a != order_b:
        verdicts.append(f"the ranking changed: {' > '.join(order_a)} became {' > '.join(order_b)}")
    sig_a, sig_b = a.significant(alpha), b.significant(alpha)
    for model in common:
        if model in sig_a and model in sig_b and sig_a[model] != sig_b[model]:
            side = "significant" if sig_a[model] else "not significant"
            verdicts.append(f"{model} was {side} at alpha {alpha:g} (Holm-adjusted DM) and is not any more")
    if a.champion != b.champion:
        verdicts.append(f"the champion changed: {a.champion or 'none'} became {b.champion or 'none'}")
    return Difference({str(m): float(v) for m, v in gaps.items()}, metrics, verdicts)


def _same(x: object, y: object) -> bool:
    if pd.isna(x) and pd.isna(y):  # type: ignore[arg-type]
        return True
    return bool(x == y)


def describe(diff: Difference, tolerance: float) -> list[str]:
    """The report's lines: the forecasts, the numbers that moved, then the verdict."""
    lines = []
    for model, gap in diff.forecasts.items():
        mark = "" if gap <= tolerance else f"  beyond the tolerance {tolerance:g}"
        lines.append(f"forecasts {model:<12} largest difference {gap:.3g}{mark}")
    for model, moved in diff.metrics.items():
        for key, (x, y) in moved.items():
            rel = abs(x - y) / abs(x) if x else float("inf")
            lines.append(f"metric    {model:<12} {key} {x:.10g} vs {y:.10g} (relative {rel:.2g})")
    if diff.verdicts:
        lines += [f"verdict   {v}" for v in diff.verdicts]
    else:
        lines.append("verdict   unchanged: the same ranking, the same significance calls, the same champion")
    return lines
