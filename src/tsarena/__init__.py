"""tsarena: a reproducible arena for financial time-series forecasting architectures."""

__version__ = "0.1.0"
