"""Layer 5, judging: the metric catalogue, scoring, the referee (SPA, MCS, Holm), the report."""
