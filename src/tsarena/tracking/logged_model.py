"""Logging a self-contained model (models-from-code, no pickle) in the active MLflow run: what training-side
stages import to log what they fit, apart from the registry's policy (registry.py), which only compare runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pip_requirements() -> list[str]:
    """Explicit, so MLflow does not spend seconds inferring them; tsarena itself travels as code."""
    from importlib.metadata import version

    packages = ["torch", "mlflow", "numpy", "pandas", "scikit-learn", "scipy", "pydantic", "pyyaml", "pyarrow"]
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


def log_pyfunc(name: str, python_model: Path, artifacts: dict[str, str], code_paths: list[str], output: Any,
               example: Any) -> dict[str, str]:
    """Log a models-from-code pyfunc (no pickle) in the active run; the signature declares the output only
    (the serving layer owns its input contract). Returns its model_uri and model_id."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec
    from mlflow.types.utils import _infer_schema

    # an example given as (input, params) declares those params (a news file's text): MLflow passes declared ones only
    params = ParamSchema([ParamSpec(k, "string", "") for k in example[1]]) if isinstance(example, tuple) else None
    signature = ModelSignature(inputs=None, outputs=_infer_schema(output), params=params)
    info = mlflow.pyfunc.log_model(name=name, python_model=str(python_model), artifacts=artifacts,
                                   code_paths=code_paths, signature=signature, input_example=example,
                                   pip_requirements=pip_requirements())
    return {"model_uri": info.model_uri, "model_id": info.model_id}
