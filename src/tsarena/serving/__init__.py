"""Layer 7, serving: the self-contained bundle (raw prices in, forecast out) and its MLflow pyfunc."""
