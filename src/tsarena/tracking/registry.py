"""The model registry and the comparison page: registering a self-contained model with its aliases, each
contestant's verdict on its run, and the runs list's shared view. (Logging the model is logged_model.py's:
training imports that, never this policy.)"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any



def _client(uri: str | None = None) -> Any:
    from tsarena.tracking.store import MlflowClient  # MLflow, after the store's env defaults; only when used

    return MlflowClient(uri)

# registry aliases compare sets: the best-ranked trained model every time, champion only on the corrected evidence
CHAMPION, BEST_RANKED = "champion", "best_ranked"

def log_verdicts(run_ids: dict[str, str], table: Any, uri: str) -> None:
    """compare's verdict per contestant on its parent run: its place in the ranking (`rank`, 1 = best; the
    oracle has none) and whether it is in the model confidence set (`in_mcs` 1/0), so the runs list
    carries the leaderboard."""
    from mlflow.entities import Metric

    from tsarena.contestants.producers import ORACLE
    from tsarena.judging.metrics import IN_MCS, RANK

    client, now = _client(uri), int(time.time() * 1000)
    for position, row in enumerate(table.to_dict(orient="records"), start=1):
        if row["model"] not in run_ids:
            continue
        values = {IN_MCS: row.get(IN_MCS), RANK: position if row.get("kind") != ORACLE else None}
        client.log_batch(run_ids[row["model"]], metrics=[Metric(k, float(v), now, 0) for k, v in values.items()
                                                         if v is not None and v == v])


VIEW = "tsarena"  # the runs list's shared view: #/experiments/<id>/runs?viewStateShareKey=tsarena
VIEW_NAME = "tsarena: every contestant"


def runs_page(experiment_id: str, shared_view: bool = True) -> str:
    """The address (after host:port/) of the experiment's runs list as model training, in tsarena's shared
    view: MLflow 3 opens an experiment in its GenAI view unless the address says otherwise."""
    page = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    return f"{page}&viewStateShareKey={VIEW}" if shared_view else page


def set_runs_view(uri: str, experiment_id: str, columns: list[str]) -> str:
    """Make the experiment open as what it is: a model-training experiment (its kind tag), and a shared view
    of the runs list (MLflow's `mlflow.sharedViewState.<key>` experiment tag, read by the UI for
    `?viewStateShareKey=<key>`) with one row per contestant and the headline metrics as the first columns,
    newest first, the compare runs filtered out. Returns the page's path for a printed link."""
    keys = [f"metrics.`{name}`" for name in columns]
    state = {"selectedColumns": keys, "columnOrder": keys, "columnWidths": {k: 120 for k in keys},
             "orderByKey": "attributes.start_time", "orderByAsc": False, "searchFilter": "tags.stage != 'compare'"}
    client = _client(uri)
    client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")
    tag = f"mlflow.sharedViewState.{VIEW}"
    now = int(time.time() * 1000)
    old = client.get_experiment(experiment_id).tags.get(tag)
    created = json.loads(old).get("createdAt", now) if old and old.startswith("{") else now
    # the UI's saved-view envelope: listed by name under the runs page's "Views" menu
    envelope = {"name": VIEW_NAME, "createdAt": created, "updatedAt": now, "state": json.dumps(state)}
    client.set_experiment_tag(experiment_id, tag, json.dumps(envelope))
    return runs_page(experiment_id)


CHATTER = ("Successfully registered model", "Registered model", "Created version")  # MLflow's, on stderr


def quietly(call, *args):
    """`call(*args)` without MLflow's registration chatter; anything else it writes to stderr still shows."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            return call(*args)
    finally:
        kept = [line for line in buffer.getvalue().splitlines() if line and not line.startswith(CHATTER)]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def register(champion, runs: dict, evidence: str, failures: list[str], params) -> tuple[str, str]:
    """Register the selected model (its served form) once per run, with tags and a description; alias
    `best_ranked` always, `champion` only if the corrected evidence holds (SPA, MCS, Holm-adjusted DM:
    `failures` empty). Returns the note for the report (no version number: the report is a DVC output,
    a pure function of its inputs) and the version it got."""
    from mlflow import register_model

    from tsarena.judging.metrics import DM_PVALUE, DM_PVALUE_HOLM, IN_MCS, SKILL_VS_RW
    from tsarena.judging.report import is_member
    from tsarena.judging.scoring import pvalue_text

    if champion is None:
        return "No model was trained, so none is registered.", ""
    client, name = _client(), champion["model"]
    if name not in runs:
        return (f"{name} is not registered: no MLflow run in this store made its predictions (it was trained against "
                "another store)."), ""
    run = runs[name]
    same_run = f"name = '{params.registered_model}' and run_id = '{run['run_id']}'"
    # a run's model has one version, the lowest: another experiment's compare may register the same run (DVC
    # restored its stage from the run cache) at this moment, and whoever made a higher version deletes its own
    existing = client.search_model_versions(same_run)
    if existing:  # a re-run of compare alone, or another experiment's
        version = min((v.version for v in existing), key=int)
    else:
        version = quietly(register_model, run["model_uri"], params.registered_model).version
        first = min((v.version for v in client.search_model_versions(same_run)), key=int)
        if int(first) < int(version):
            client.delete_model_version(params.registered_model, version)
            version, existing = first, True
    served = run["served"]
    which = (f"fold {served['fold']}, seed {served['seed']}: the most recent data, and its seed with the lowest "
             "validation loss" if "seed" in served else f"its members' served models, weights {served['weights']}")
    what = f"**{name}** is registered as `{params.registered_model}` ({which})"
    tags = {"architecture": name, "data_md5": run.get("data_md5", ""), "params_hash": run.get("params_hash", ""),
            "git_commit": run.get("git_commit", ""), DM_PVALUE: pvalue_text(champion[DM_PVALUE]),
            DM_PVALUE_HOLM: pvalue_text(champion.get(DM_PVALUE_HOLM)), IN_MCS: str(is_member(champion.get(IN_MCS))),
            SKILL_VS_RW: f"{champion[SKILL_VS_RW]:.4g}"}
    for key, value in tags.items():
        client.set_model_version_tag(params.registered_model, version, key, value)
    client.set_registered_model_alias(params.registered_model, BEST_RANKED, version)
    if not failures:
        client.set_registered_model_alias(params.registered_model, CHAMPION, version)
        note = (f"{what} with alias `champion`: the SPA test rejects that nothing beats the random walk, {name} is in "
                f"the model confidence set, and its Holm-adjusted DM p-value is below {params.alpha}.")
    else:
        reason = "; ".join(failures)
        client.set_model_version_tag(params.registered_model, version, "champion_rejected", reason[:5000])
        note = (f"{what} with alias `{BEST_RANKED}`, but the `champion` alias was left where it was: {reason}. "
                f"To forecast with it anyway: `tsarena predict FILE --model {BEST_RANKED}`.")
    description = (f"{name}: raw OHLCV prices in, forecast per ticker out (tsarena self-contained model). "
                   f"{note} Evidence: {evidence}")
    client.update_model_version(params.registered_model, version, description=description[:5000])
    return note, f"version {version}" + (" (this run's model was already registered: no new version)" if existing else "")
