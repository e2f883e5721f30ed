"""explain: what each contestant looks at, on a sample of the served fold's test windows (judging.attributions).

Every producer gets permutation importance (the served networks, every baseline refit on that fold, the
ensemble); every network also gets integrated gradients (a lag x feature map, per-feature totals and the
completeness error), and the TFT its own variable-selection weights. Each producer's files go onto its
MLflow run under `explain/`; compare draws the report's section from data/explain. Off with explain.enabled."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

from pathlib import Path

import numpy as np

from tsarena import config
from tsarena.contestants.baselines import fit_all
from tsarena.contestants.producers import SPLIT, model_dir, predictions_path, producing_stage, trained
from tsarena.core.errors import stage_main
from tsarena.core.io import atomic_dir, write_json
from tsarena.judging.attributions import LOSSES, explain_network, permutation_importance, sample_ends
from tsarena.split.windows import load_fold, read_meta, windows_at

OUT = Path("data/explain")
NONE = "none"  # the top feature of a forecast no shuffle changes


@stage_main
def main() -> None:
    params = config.load("arena", "baselines", "explain", "tracking")
    ex = params["explain"]
    with atomic_dir(OUT) as tmp:
        if not ex.enabled:
            write_json(tmp / "summary.json", {})
            print("explain: off (explain.enabled is false)")
            return
        import torch

        from tsarena.judging.plots import plot_explanation, plot_importance_grid
        from tsarena.serving.bundle import Bundle
        from tsarena.serving.explain import bundle_attributions

        torch.set_num_threads(1)  # the same numbers on any machine
        fold = read_meta(SPLIT)["n_folds"]  # the served models' fold
        windows = load_fold(SPLIT, fold)
        ends = sample_ends(windows.ends["test"], ex.windows)
        x = np.ascontiguousarray(windows_at(windows.matrix, ends, windows.seq_len), dtype=np.float32)
        y, features = windows.targets[ends].astype(float), windows.meta["features"]
        baseline = np.zeros(x.shape[1:], dtype=np.float32)  # the scaler's centre of every feature
        loss = LOSSES[windows.meta["target_kind"]]

        predictors = {name: fit.predict for name, fit in fit_all(windows, params["baselines"]).items()}
        bundles = {name: Bundle.load(model_dir(name) / "bundle") for name in trained(params["arena"])}
        predictors.update({name: bundle.predict_windows for name, bundle in bundles.items()})
        summary, known = {}, {}  # known: each network's attributions, reused for the ensemble's members
        for name, predict in predictors.items():
            folder = tmp / name
            folder.mkdir()
            ranking = permutation_importance(predict, x, y, features, loss, ex.repeats, ex.seed)
            ranking.to_csv(folder / "permutation.csv", index=False)
            used = ranking["importance"].iloc[0] > 0  # a constant forecast (random walk, drift) uses no input
            summary[name] = {"top_feature": str(ranking["feature"].iloc[0]) if used else NONE,
                             "top_rise_pct": float(ranking["rise_pct"].iloc[0])}
            if name in bundles:
                bundle = bundles[name]
                attributions = bundle_attributions(bundle, x, baseline, ex.steps, known)
                explained = explain_network(attributions, [m.model for m in bundle.members], x, features)
                explained.lag_map.to_csv(folder / "lag_map.csv", index=False)
                explained.totals.to_csv(folder / "attribution.csv", index=False)
                if explained.weights is not None:
                    explained.weights.to_csv(folder / "variable_weights.csv", index=False)
                plot_explanation(name, explained.lag_map, explained.totals, ranking, folder / "explain.png")
                summary[name].update(explained.summary)
            else:
                plot_importance_grid({name: ranking}, folder / "importance.png", top=len(features))
            print(f"explain: {name:<{max(map(len, predictors))}} permutation top {summary[name]['top_feature']}"
                  + (f"; integrated gradients top {summary[name]['ig_top_feature']} (lag {summary[name]['ig_top_lag']}),"
                     f" completeness error {100 * summary[name]['ig_completeness_error']:.2g}%"
                     if name in bundles else ""))
        write_json(tmp / "summary.json", {"fold": fold, "windows": len(ends), "steps": ex.steps,
                                          "repeats": ex.repeats, "producers": summary})

        from tsarena.tracking.runs import log_explanation, producer_run

        for name, found in summary.items():
            run = producer_run(params["tracking"], producing_stage(name), name, predictions_path(name))
            if run is None:
                print(f"note: no MLflow run in this store made {predictions_path(name)}: {name}'s explanation is in "
                      f"{OUT}/{name} only")
                continue
            metrics = {k: v for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            log_explanation(run, tmp / name, {f"explain.{k}": v for k, v in metrics.items()},
                            {"explain.top_feature": found["top_feature"]}, params["tracking"])
    print(f"explain: {len(summary)} contestants on {len(ends)} test windows of fold {fold} -> {OUT}; each on its "
          "MLflow run under explain/")


if __name__ == "__main__":
    main()
