"""The one exception type for bad input: the CLI prints its message on one line and exits 2."""


class VggbenchError(Exception):
    """A problem with what the user asked for; the message names the problem and the fix."""
