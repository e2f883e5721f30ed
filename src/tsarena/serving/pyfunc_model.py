"""MLflow models-from-code entry point: the logged model is this file plus a bundle folder.

Loading it runs this file (no pickled object) and `TsarenaModel.load_context` reads the bundle.
"""

import mlflow.models

from tsarena.serving.mlflow_model import TsarenaModel

mlflow.models.set_model(TsarenaModel())
