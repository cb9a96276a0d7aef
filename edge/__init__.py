"""faceedge runtime: decode, detect, track, select, enhance, publish."""

__version__ = "0.1.0"
