"""Errors the CLI turns into one clear message instead of a stack trace."""


class StackError(RuntimeError):
    """Something the user can fix: missing Java, a port taken, Maven unreachable..."""
