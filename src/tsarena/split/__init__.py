"""Layer 2, the split: walk-forward folds, the purge, train-only scalers, windows as views."""
