"""Errors that carry a message for the person and a stable code for API clients."""

from __future__ import annotations


class InvalidInput(ValueError):
    """Input the visitor can fix. ``code`` is listed in the OpenAPI document."""

    status = 400

    def __init__(
        self, code: str, message: str, status: int = 400, *, suggestions: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        #: what the visitor may have meant ("Did you mean ..."), for ``location_not_found``
        self.suggestions = suggestions
