"""Exceptions the engine raises; every front end turns them into its own kind of message."""

from __future__ import annotations


class DeepLIIFError(Exception):
    """Base class of every error the engine reports to a user."""


class ModelError(DeepLIIFError):
    """A model directory, file or index entry cannot be used (the message names which)."""


class InputImageError(DeepLIIFError, ValueError):
    """An input image cannot be processed as given (the message says what to do)."""


class Cancelled(DeepLIIFError):
    """The caller asked to stop; no partial result was kept."""
