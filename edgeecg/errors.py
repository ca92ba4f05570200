"""The one exception type a user sees: a one-line message naming the file and the problem."""


class EdgeECGError(Exception):
    """A user-facing error. The CLI prints ``str(err)`` on one line and exits non-zero."""
