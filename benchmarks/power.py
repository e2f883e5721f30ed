"""Benchmark 7b: how often can anyone meet issue #25's bar, given the test period the split leaves?

The bar: on AR(1) (phi 0.3) data, over 5 data seeds, a mean share of the oracle's skill of at least
75% and a one-sided DM p < 0.05 (against the random walk) on at least 4 of the 5 seeds. With the
70/15/15 split a 2,000-day series leaves 300 test days, a 4,000-day one 600. This simulates the test
period only: the true model (the oracle) and models whose forecast is the oracle's plus independent
fit noise sized to give an expected share s; the DM test is evaluate's own (`diebold_mariano`).
Twelve such models on the same 5 data sets is the whole zoo as the issue checks it.

    python benchmarks/power.py [--trials 500] [--test-days 300 600 1000]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.signal import lfilter

from common import save, table
from tsarena.judging.significance import diebold_mariano

PHI = 0.3
VAR_Y = 1 / (1 - PHI**2)  # unit innovations: the random walk's (zero-return) MSE
ORACLE_SKILL = 1 - np.sqrt(1 / VAR_Y)


def noise_sd(share: float) -> float:
    """Fit noise that takes the oracle's expected RMSE skill to `share` of it."""
    return float(np.sqrt(VAR_Y * (1 - share * ORACLE_SKILL) ** 2 - 1))


def seed_scores(rng: np.random.Generator, test_days: int, shares: list[float]) -> np.ndarray:
    """One data seed: (share of the oracle's realised skill, DM p) for each model, the oracle first."""
    y = lfilter([1.0], [1.0, -PHI], rng.standard_normal(test_days + 301))[300:]
    lag, target = y[:-1], y[1:]
    rmse_rw = np.sqrt(np.mean(target**2))
    oracle_skill = 1 - np.sqrt(np.mean((target - PHI * lag) ** 2)) / rmse_rw
    out = []
    for share in [1.0, *shares]:
        forecast = PHI * lag + (noise_sd(share) * rng.standard_normal(test_days) if share < 1 else 0)
        skill = 1 - np.sqrt(np.mean((target - forecast) ** 2)) / rmse_rw
        out.append((skill / oracle_skill, diebold_mariano((target - forecast) ** 2 - target**2, 1)[1]))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500, help="groups of 5 data seeds per test length")
    parser.add_argument("--test-days", type=int, nargs="+", default=[300, 600, 1000])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.9, 0.8])
    args = parser.parse_args()
    rng = np.random.default_rng(25)
    rows = []
    for test_days in args.test_days:
        for share in args.shares:
            zoo = [share] * 12
            # trials x 5 seeds x (oracle + 12 models) x (share, p)
            scores = np.array([[seed_scores(rng, test_days, zoo) for _ in range(5)] for _ in range(args.trials)])
            mean_share = scores[..., 0].mean(axis=1)  # trials x models
            significant = (scores[..., 1] < 0.05).sum(axis=1)
            passes = (mean_share >= 0.75) & (significant >= 4)
            rows.append({"test_days": test_days, "series_days": round(test_days / 0.15), "fit_share": f"{share:.0%}",
                         "oracle_4of5_significant": f"{np.mean(significant[:, 0] >= 4):.2f}",
                         "model_4of5_significant": f"{np.mean(significant[:, 1:] >= 4):.2f}",
                         "model_mean_share_75": f"{np.mean(mean_share[:, 1:] >= 0.75):.2f}",
                         "model_both": f"{passes[:, 1:].mean():.2f}",
                         "all_12_both": f"{passes[:, 1:].all(axis=1).mean():.2f}"})
            print(table(rows[-1:], list(rows[-1])), flush=True)
    print(table(rows, list(rows[0])))
    print(f"saved {save('power', {'phi': PHI, 'trials': args.trials, 'rows': rows})}")


if __name__ == "__main__":
    main()
