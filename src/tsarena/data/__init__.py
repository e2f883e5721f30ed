"""Layer 1, data in: price sources, their validation, causal features and the feature table."""
