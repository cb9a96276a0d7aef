"""Inference backend plugins, one module per backend, each exposing its plugin object as `PLUGIN`.

`trt_engines.backends` imports every module here and registers each `PLUGIN` it finds, so a new
backend is one new file (see `base.BackendPlugin`); modules without `PLUGIN` are shared helpers.
"""
