"""The bundle's MLflow face: the pyfunc class MLflow loads (models-from-code: pyfunc_model.py runs it, nothing
is pickled), the example and output schema it is logged with, and the logging itself.

The signature declares the output only: the input contract is `bundle.input_prices` (any column case,
Adj Close, text or datetime dates, integer volume), which an MLflow input schema would narrow by
dropping or rejecting columns before tsarena sees them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tsarena.core.errors import TsarenaError
from tsarena.serving.bundle import Bundle, example_input

PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")


NEWS = "news"  # the pyfunc's one param: a news file's text (CSV), for a model that reads news sentiment


def example_news(bundle: Bundle, example: pd.DataFrame, items: Path) -> pd.DataFrame | None:
    """The scored news items (the sentiment stage's) of the example's ticker and dates, as a news file holds
    them; None for a model without news sentiment."""
    if bundle.preprocess.get("sentiment") is None:
        return None
    news = pd.read_parquet(items, columns=["timestamp", "ticker", "headline", "body"])
    start = pd.Timestamp(example["date"].iloc[0]).tz_localize("UTC")
    news = news[news["ticker"].isin([str(example["ticker"].iloc[0]), ""]) & (news["timestamp"] >= start)]
    return news.assign(timestamp=news["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S%z")).reset_index(drop=True)


def signature_example(bundle: Bundle, split: Path, sentiment: Path = Path("data/sentiment")) -> tuple[Any, pd.DataFrame]:
    """An input example from the split's rows (enough history for the features and one window), with its
    news where the model reads them, and the bundle's answer to it: what MLflow records as the model's
    example and output schema."""
    from tsarena.data.features import raw_extras

    rows = pd.read_parquet(split / "rows.parquet", columns=["date", "ticker", "close",
                                                             *raw_extras(bundle.preprocess["features"])])
    example = example_input(rows, bundle.preprocess["seq_len"] + 300)
    news = example_news(bundle, example, sentiment / "items.parquet")
    output = bundle.forecast(example, news=news)
    return (example if news is None else (example, {NEWS: news.to_csv(index=False)})), output


def log_bundle(name: str, folder: Path, example: Any, output: Any) -> dict[str, str]:
    """Log a bundle folder in the active run as an MLflow pyfunc, the tsarena package as its code."""
    import tsarena
    from tsarena.tracking.logged_model import log_pyfunc

    return log_pyfunc(name, PYFUNC_FILE, {"bundle": str(folder)}, [str(Path(tsarena.__file__).parent)], output, example)


try:  # the MLflow face of a bundle; MLflow is absent only where nothing is served
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    class BadInput(MlflowException):
        """A request tsarena rejects: HTTP 400 whose message is tsarena's one line. MLflow's scoring
        server rewrites an MlflowException's message to prepend a dump of the whole input, so the
        message here cannot be reassigned."""

        def __init__(self, line: str):
            self._line = line
            super().__init__(line, error_code=INVALID_PARAMETER_VALUE)

        @property
        def message(self) -> str:
            return self._line

        @message.setter
        def message(self, _ignored: str) -> None:
            pass

    class TsarenaModel(mlflow.pyfunc.PythonModel):
        """Logged as code (models-from-code), not pickled; the bundle folder is its artifact."""

        def load_context(self, context: Any) -> None:
            import os

            from tsarena.core.numerics import MODE_VARIABLE, PORTABLE, pin

            # torch reads its kernel knobs at its first operation: pinned here, in a process tsarena did not
            # start (tsarena predict and serve pin theirs, numpy's too, at start: core.pinned)
            pin(os.environ.get(MODE_VARIABLE, PORTABLE))
            self.bundle = Bundle.load(context.artifacts["bundle"])

        def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            import io

            from tsarena.data.sources import csv_table

            try:
                text = (params or {}).get(NEWS) or None
                news, lines = (None, None) if text is None else csv_table(io.StringIO(text), f"params {NEWS!r}")
                return self.bundle.forecast(pd.DataFrame(model_input), news=news, news_labels=lines,
                                            news_where=f"params {NEWS!r}")
            except TsarenaError as exc:
                raise BadInput(str(exc)) from None
except ImportError:  # pragma: no cover
    pass
