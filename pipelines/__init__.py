"""Training pipelines for the models faceedge ships (seeds 000-004)."""
