"""Layer 4, fitting: the Lightning engine, one fit, the worker pool for fits and trials, tuning."""
