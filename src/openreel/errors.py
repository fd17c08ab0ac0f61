"""Errors people see. Each carries a stable ``code`` (used by the API's error envelope and the
job table) and, where one input is to blame, the ``param`` that names it."""

from __future__ import annotations


class OpenreelError(Exception):
    """Base class: a message written for the person who asked, never a traceback."""

    code = "openreel_error"
    status = 500

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


class SpecError(OpenreelError, ValueError):
    """What was asked cannot be made as asked (bad size, duration, style, ...)."""

    code = "invalid_request"
    status = 400


class UnknownModelError(SpecError):
    code = "model_not_found"


class UnsupportedModeError(SpecError):
    code = "unsupported_mode"


class RecipeError(SpecError):
    code = "invalid_recipe"


class WeightsMissingError(OpenreelError):
    """The model's weights are not on this machine and could not be fetched."""

    code = "weights_missing"
    status = 503


class OutOfMemoryError(OpenreelError):
    code = "out_of_memory"
    status = 507


class GenerationError(OpenreelError):
    code = "generation_failed"


class Cancelled(OpenreelError):
    """The job was cancelled; no output was written."""

    code = "cancelled"
    status = 409
