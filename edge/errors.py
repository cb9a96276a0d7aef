"""Errors that name the problem; the CLI turns each into one log line and an exit code."""


class FaceEdgeError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = 1


class ConfigError(FaceEdgeError):
    """Invalid configuration: unknown key, wrong type, bad value."""

    exit_code = 2


class ModelFileError(FaceEdgeError):
    """A model file is missing, unreadable or not a valid ONNX graph."""

    exit_code = 3


class SourceError(FaceEdgeError):
    """A video source could not be opened or read."""
