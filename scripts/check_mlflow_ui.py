"""Open the MLflow UI as a user would and check that tsarena's model runs are there.

Starts `mlflow ui` on the given store, renders the experiment's runs page in headless Chromium
(`apt-get install chromium`), and looks for every parent model run (and `compare`) by name in the
rendered page; saves a screenshot beside. Exit 0 when all are found.

    .venv/bin/python scripts/check_mlflow_ui.py [--store sqlite:///mlflow.db] [--experiment tsarena]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(url: str, screenshot: Path, budget_ms: int) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("error: no Chromium found (apt-get install chromium)")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--virtual-time-budget={budget_ms}", "--window-size=1500,1000"]
    subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=180)
    return subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="tsarena")
    parser.add_argument("--screenshot", type=Path, default=Path("mlflow_ui.png"))
    parser.add_argument("--budget-ms", type=int, default=20000, help="virtual time Chromium gives the page's scripts")
    args = parser.parse_args()

    from mlflow import MlflowClient

    client = MlflowClient(args.store)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        sys.exit(f"error: no experiment {args.experiment!r} in {args.store}")
    top = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'", max_results=500)
    expected = sorted({r.info.run_name for r in top if "mlflow.parentRunId" not in r.data.tags})
    port = free_port()
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", args.store,
                           "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("error: mlflow ui did not start")
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs"
        page = render(url, args.screenshot, args.budget_ms)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    found = [name for name in expected if f">{name}<" in page or f"\"{name}\"" in page]
    missing = [name for name in expected if name not in found]
    print(f"{url}: {len(found)} of {len(expected)} model runs visible: {', '.join(found)}")
    print(f"screenshot: {args.screenshot}")
    if missing:
        sys.exit(f"error: not visible in the UI: {', '.join(missing)}")


if __name__ == "__main__":
    main()
