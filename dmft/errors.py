"""Exceptions raised by dmft."""


class ProblemError(ValueError):
    """Invalid user input.  The message always starts with the name of the offending field."""

    def __init__(self, field, message):
        self.field = field
        super().__init__(f"{field}: {message}")
