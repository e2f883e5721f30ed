"""Open the MLflow UI as a user would and check that its first page compares every contestant.

Starts `tsarena ui` (mlflow ui) on the given store, renders the link it prints (the experiment's runs list,
tsarena's shared view: model training, one row per contestant, the headline metrics as columns) in
headless Chromium (`apt-get install chromium`), and reads the rendered grid: every contestant in
data/eval/metrics.json must be a row whose test_rmse cell shows its test RMSE (`rmse` there). Saves a screenshot.
Exit 0 when all are found.

    .venv/bin/python scripts/check_mlflow_ui.py [--store sqlite:///mlflow.db] [--metrics data/eval/metrics.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(url: str, screenshot: Path, budget_ms: int, width: int) -> str:
    common = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--virtual-time-budget={budget_ms}", f"--window-size={width},900"]
    subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=180)
    return subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout


class Grid(HTMLParser):
    """The runs grid's cells as rendered (AG Grid): row index -> column id -> text. The pinned run-name
    column and the scrolling metric columns are separate containers whose rows share a row index."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = defaultdict(dict)
        self.row: str | None = None
        self.cell: str | None = None
        self.depth = 0  # open elements inside the current cell

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if found.get("role") == "row" and "row-index" in found:
            self.row = found["row-index"]
        elif found.get("role") == "gridcell" and self.row is not None and "col-id" in found:
            self.cell, self.depth = found["col-id"], 0
            self.rows[self.row][self.cell] = ""
        elif self.cell is not None:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.cell is not None:
            if self.depth == 0:
                self.cell = None
            else:
                self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.cell is not None and self.row is not None:
            self.rows[self.row][self.cell] += data


def table(page: str) -> list[dict[str, str]]:
    """Each rendered row as {column id: text}."""
    grid = Grid()
    grid.feed(page)
    return list(grid.rows.values())


def check(rows: list[dict[str, str]], expected: dict[str, float]) -> tuple[list[str], list[str]]:
    """(contestants shown with their test RMSE, those that are not)."""
    # the name cell also holds the run's colour as hidden text (#9e102c) before the name
    shown = {(re.sub(r"^#[0-9a-fA-F]{6}", "", r.get("attributes.`Run Name`", "").strip()),
              r.get("metrics.`test_rmse`", "").strip()) for r in rows}
    found = [name for name, rmse in expected.items() if (name, repr(rmse)) in shown]
    return found, [name for name in expected if name not in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="tsarena")
    parser.add_argument("--metrics", type=Path, default=Path("data/eval/metrics.json"))
    parser.add_argument("--screenshot", type=Path, default=Path("mlflow_ui.png"))
    parser.add_argument("--width", type=int, default=2200, help="browser window width in pixels")
    parser.add_argument("--page", default="shared", choices=["shared", "experiment"],
                        help="shared: the link `tsarena ui` prints; experiment: the experiment as the home page opens it")
    parser.add_argument("--budget-ms", type=int, default=20000, help="virtual time Chromium gives the page's scripts")
    args = parser.parse_args()
    if chromium() is None:
        sys.exit("error: no Chromium found (apt-get install chromium)")

    from mlflow import MlflowClient

    experiment = MlflowClient(args.store).get_experiment_by_name(args.experiment)
    if experiment is None:
        sys.exit(f"error: no experiment {args.experiment!r} in {args.store}")
    view = next((k.removeprefix("mlflow.sharedViewState.") for k in experiment.tags
                 if k.startswith("mlflow.sharedViewState.")), None)
    if view is None:
        sys.exit(f"error: experiment {args.experiment!r} has no shared runs view (run `dvc repro`: compare sets it)")
    expected = {name: m["rmse"] for name, m in json.loads(args.metrics.read_text()).items()}
    port = free_port()
    # as a user would: `tsarena ui` starts the UI and prints the link to the comparison
    ui = subprocess.Popen([str(Path(sys.executable).parent / "tsarena"), "ui", "--tracking-uri", args.store,
                           "--experiment", args.experiment, "--port", str(port)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    try:
        link = ui.stderr.readline().strip()
        if "http://" not in link:
            sys.exit(f"error: tsarena ui printed no link: {link or ui.stderr.read()}")
        threading.Thread(target=ui.stderr.read, daemon=True).start()  # drain the server's log
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("error: mlflow ui did not start")
                time.sleep(0.5)
        url = link[link.index("http://"):]
        if args.page == "experiment":  # what the experiments list opens: MLflow's own default view
            url = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}"
        page = render(url, args.screenshot, args.budget_ms, args.width)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    found, missing = check(table(page), expected)
    print(f"{url}: {len(found)} of {len(expected)} contestants shown with their test RMSE: {', '.join(found)}")
    print(f"screenshot: {args.screenshot}")
    if missing:
        sys.exit(f"error: not on the first page with their test RMSE: {', '.join(missing)}")


if __name__ == "__main__":
    main()
