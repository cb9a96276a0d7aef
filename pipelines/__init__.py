"""Training pipelines for the models faceedge ships (see the README's table of methods)."""
