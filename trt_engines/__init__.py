"""Inference backends behind one interface, and TensorRT engine building and caching."""
