"""judging.attributions: permutation importance and integrated gradients on inputs whose answer is known."""

import numpy as np
import pytest
import torch

from tsarena.contestants.registry import architecture_names, build_model, params_class
from tsarena.judging.attributions import (COMPLETENESS_TOLERANCE, attribute, explain_network, feature_totals,
                                          integrated_gradients, lag_feature_map, permutation_importance, sample_ends,
                                          squared_error, top_inputs)

FEATURES = ["a", "b", "c"]


def planted(n: int = 400, seq_len: int = 8, seed: int = 0):
    """Windows whose target is 0.5 * feature a two rows before the last one (lag 2), plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, seq_len, len(FEATURES))).astype(np.float32)
    return x, 0.5 * x[:, -3, 0] + 0.1 * rng.standard_normal(n)


def test_permutation_ranks_the_used_feature_first_and_an_unread_one_at_exactly_zero():
    x, y = planted()
    ranking = permutation_importance(lambda w: 0.5 * w[:, -3, 0] + 0.05 * w[:, -1, 1], x, y, FEATURES,
                                     squared_error, repeats=3, seed=0)
    assert list(ranking["feature"][:2]) == ["a", "b"] and list(ranking["order"]) == [1, 2, 3]
    assert ranking.set_index("feature").loc["c", "importance"] == 0  # never read: no shuffle can change it
    # in units of the loss: shuffling a destroys its part of the forecast, 2 * var(0.5 a) on average
    assert ranking["importance"].iloc[0] == pytest.approx(2 * 0.25, rel=0.25)
    assert ranking["share"].sum() == pytest.approx(1.0)


def test_a_constant_forecast_uses_nothing():
    x, y = planted()
    ranking = permutation_importance(lambda w: np.zeros(len(w)), x, y, FEATURES, squared_error, 2, 0)
    assert (ranking["importance"] == 0).all() and (ranking["share"] == 0).all()


def test_integrated_gradients_of_a_linear_map_are_exact_and_find_the_lag():
    x, _ = planted()
    weights = torch.zeros(8, 3)
    weights[-3, 0], weights[-1, 2] = 0.5, -0.2

    def network(w: torch.Tensor) -> torch.Tensor:
        return (w * weights).sum(dim=(1, 2))

    baseline = np.full((8, 3), 0.1, dtype=np.float32)
    found = integrated_gradients(network, x, baseline, steps=4)
    # linear: attribution = weight * (x - baseline), exactly, and they add up
    np.testing.assert_allclose(found.values, (weights.numpy() * (x - baseline)), atol=1e-5)
    assert found.completeness_error < 1e-5
    lag_map = lag_feature_map(found.values, FEATURES)
    totals = feature_totals(lag_map).set_index("feature")
    assert totals.loc["a", "peak_lag"] == 2 and totals.loc["c", "peak_lag"] == 0
    assert totals.loc["b", "attribution"] == 0
    assert totals["order"]["a"] == 1
    top = top_inputs(found.values[0], FEATURES, 2)
    assert {(t["feature"], t["lag"]) for t in top} <= {("a", 2), ("c", 0)}


@pytest.mark.parametrize("name", architecture_names())
def test_attributions_add_up_for_every_architecture(name):
    """Completeness within the stated tolerance for every network, random weights (kinks and all)."""
    torch.manual_seed(0)
    x = np.random.default_rng(1).standard_normal((32, 20, 4)).astype(np.float32)
    model = build_model(name, params_class(name)().model_dump(),
                        {"n_features": 4, "seq_len": 20, "target_mean": 0.0, "target_std": 1.0}).eval()
    found = attribute(model, x, np.zeros((20, 4), dtype=np.float32), steps=32)
    assert found.completeness_error <= COMPLETENESS_TOLERANCE
    assert np.abs(found.moved).sum() > 0  # the forecast moved: the check had something to add up


def test_the_tft_reports_its_variable_weights_and_others_none():
    x = np.random.default_rng(0).standard_normal((16, 10, 3)).astype(np.float32)
    dims = {"n_features": 3, "seq_len": 10, "target_mean": 0.0, "target_std": 1.0}
    tft = build_model("tft", params_class("tft")().model_dump(), dims).eval()
    lstm = build_model("lstm", params_class("lstm")().model_dump(), dims).eval()
    base = np.zeros((10, 3), np.float32)
    explained = explain_network(attribute(tft, x, base, steps=8), [tft], x, FEATURES)
    assert sorted(explained.weights["feature"]) == FEATURES
    assert explained.weights["weight"].sum() == pytest.approx(1.0, abs=1e-5)  # softmax over features
    assert explain_network(attribute(lstm, x, base, steps=8), [lstm], x, FEATURES).weights is None


def test_an_ensemble_is_explained_as_its_members_weighted_reusing_members_explained_already():
    """Integrated gradients are linear in the function: the ensemble's equal one pass over its weighted sum,
    and a member explained already (same name, same weights) is not attributed again; another fit of the
    same architecture is."""
    from tsarena.serving.bundle import Bundle, Member
    from tsarena.serving.explain import bundle_attributions

    torch.manual_seed(0)
    dims = {"n_features": 3, "seq_len": 10, "target_mean": 0.0, "target_std": 1.0}
    x, base = np.random.default_rng(2).standard_normal((24, 10, 3)).astype(np.float32), np.zeros((10, 3), np.float32)
    models = {name: build_model(name, params_class(name)().model_dump(), dims).eval() for name in ("lstm", "dlinear")}
    pre = {"target_kind": "return"}
    known = {}
    for name, model in models.items():
        bundle_attributions(Bundle(pre, [Member(name, {}, dims, 1.0, model)]), x, base, 16, known)
    first = {name: found for name, (_, found) in known.items()}
    ensemble = Bundle(pre, [Member("lstm", {}, dims, 0.3, models["lstm"]), Member("dlinear", {}, dims, 0.7, models["dlinear"])])
    combined = bundle_attributions(ensemble, x, base, 16, known)
    direct = integrated_gradients(ensemble.network, x, base, 16)
    assert np.allclose(combined.values, direct.values, atol=1e-6) and np.allclose(combined.moved, direct.moved, atol=1e-6)
    assert np.abs(combined.values).sum() > 0
    assert all(known[name][1] is first[name] for name in models)  # reused
    refit = build_model("lstm", params_class("lstm")().model_dump(), dims).eval()  # other weights, same name
    bundle_attributions(Bundle(pre, [Member("lstm", {}, dims, 1.0, refit)]), x, base, 16, known)
    assert known["lstm"][0] is refit and known["lstm"][1] is not first["lstm"]


def test_sampled_windows_spread_over_the_whole_period():
    ends = np.arange(1000, 2000)
    picked = sample_ends(ends, 10)
    assert len(picked) == 10 and picked[0] == 1000 and picked[-1] == 1999
    assert np.array_equal(sample_ends(ends[:5], 10), ends[:5])
