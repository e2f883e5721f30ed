"""Layer 3, the contestants: the architectures (one file each, found by the registry), the baselines,
the ensemble, and the one predictions table every producer writes."""
