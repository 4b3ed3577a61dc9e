"""The project's user-facing error: `ctpipe` prints it as one line and exits with status 1.

A leaf module (it imports nothing of the project), so that every package can raise errors the
command line reports without importing the command line.
"""


class UserError(Exception):
    """Bad input, or a step that failed for a reason the user can act on; the message says
    what was wrong and, where it helps, how to fix it."""
