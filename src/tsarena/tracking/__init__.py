"""Layer 6, tracking: MLflow stores, stage runs and the model registry; lineage (dvc.lock, git)."""
