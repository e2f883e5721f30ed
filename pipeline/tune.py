"""tune@<model>: the configuration train@<model> uses. With tune.trials > 0, an Optuna search with the
same budget for every architecture, on fold 1's training and validation windows only; with 0, the
params as they are in params.yaml.

Usage: python pipeline/tune.py <model>. One MLflow parent run `tune <model>` with a nested run per trial.
"""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import argparse
import hashlib
import json
import resource
import time

from tsarena import config
from tsarena.core.errors import TsarenaError, stage_main
from tsarena.fitting.fit import check_batch
from tsarena.core.io import scratch_dir, write_json
from tsarena.contestants.producers import SPLIT, tuned_path
from tsarena.contestants.registry import architecture_names
from tsarena.split.windows import read_meta


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def trial_record(trial) -> dict:
    start = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
    end = trial.datetime_complete.timestamp() if trial.datetime_complete else start
    return {"number": trial.number, "state": trial.state.name, "value": trial.value, "params": trial.params,
            "curve": {int(k): float(v) for k, v in trial.intermediate_values.items()}, "start_ms": int(start * 1000),
            "end_ms": int(end * 1000), "note": trial.user_attrs.get("invalid"), "pid": trial.user_attrs.get("pid")}


@stage_main
def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("model", choices=architecture_names())
    name = cli.parse_args().model
    params = config.load("tune", "train", name, "tracking")
    tune, train, base = params["tune"], params["train"], params[name].model_dump(mode="json")
    out = {"model": name, "params": base, "train": {}, "trials": 0}
    if tune.trials == 0:
        write_json(tuned_path(name), out)
        print(f"tune@{name}: tune.trials is 0: params.yaml's {name} section as it is")
        return
    meta = read_meta(SPLIT)
    fold = meta["folds"][0]
    check_batch(fold["n_samples"]["train"], meta["seq_len"], train.batch_size, 1, 1)

    from tsarena.tracking.lineage import dvc_out_md5
    from tsarena.tracking.runs import StageRuns
    from tsarena.fitting.tuning import configuration, run_study

    # the study's name is its inputs' digest: a shared storage resumes the same search, never mixes two
    mine = {k: v for k, v in config.result_params({"train": train, "tune": tune}).items()
            if not k.startswith("tune.space.") or k.startswith(f"tune.space.{name}.")}
    inputs = json.dumps([dvc_out_md5("split", str(SPLIT)), base, mine], sort_keys=True, default=str)
    study_name = f"tsarena-{name}-{hashlib.sha256(inputs.encode()).hexdigest()[:12]}"
    runs = StageRuns(f"tune@{name}", ("split", str(SPLIT)), config.result_params(params), params["tracking"])
    started_wall, started_cpu = time.perf_counter(), cpu_seconds()
    with runs.parent(f"tune {name}") as parent, scratch_dir(f"tune-{name}") as scratch:
        study = run_study(study_name, name, base, train, tune, str(SPLIT), f"{scratch}/journal.log")
        records = [trial_record(t) for t in study.trials]
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            raise TsarenaError(f"none of {len(records)} trials completed (all pruned or invalid): widen the space or "
                               "raise tune.trials", f"tune.space.{name}")
        best = study.best_trial  # read now: a journal file goes with the scratch folder
        chosen, chosen_train = configuration(name, base, train, best.params)
        cost = {"trials": len(records), "complete": len(complete),
                "pruned": sum(r["state"] == "PRUNED" for r in records)}
        # timings go to MLflow only: the tracked output is a pure function of its inputs
        # on Ray the trials' CPU time is spent on the cluster, not by this process or its children
        local = train.backend == "local"
        timing = {"wall_seconds": time.perf_counter() - started_wall,
                  **({"cpu_seconds": cpu_seconds() - started_cpu} if local else {}),
                  "workers": len({r["pid"] for r in records if r["pid"]})}
        runs.log_trials(parent, f"tune {name}", records)
        runs.log_metrics({"best_val_loss": best.value, "tune.trials": cost["trials"], "tune.pruned": cost["pruned"],
                          **({"tune.cpu_seconds": timing["cpu_seconds"]} if local else {}),
                          "tune.workers": timing["workers"]})
        searched_train = {k: getattr(chosen_train, k) for k in tune.train_space}
        chosen_keys = {**{f"chosen.{name}.{k}": v for k, v in chosen.items()},
                       **{f"chosen.train.{k}": v for k, v in searched_train.items()}}
        runs.log_tags({k: str(v) for k, v in chosen_keys.items()})
        out.update(params=chosen, train=searched_train, **cost,
                   best_trial=best.number, best_val_loss=best.value, study=study_name)
        write_json(tuned_path(name), out)
    where = f"{timing['cpu_seconds']:.0f} CPU s" if local else f"{timing['workers']} Ray worker(s)"
    print(f"tune@{name}: {cost['trials']} trials ({cost['pruned']} pruned) in {timing['wall_seconds']:.0f} s, "
          f"{where}; best trial {best.number} (val loss {best.value:.5f}): {chosen_keys}")


if __name__ == "__main__":
    main()
