"""Progress notes: one-line facts a pipeline step wants its user to read.

Steps run inside TFX (in this process with LocalDagRunner, in a pod on Kubeflow), so they cannot
print to `ctpipe run`'s output themselves. They log a note on this logger instead: the local
runner shows each note under the step's progress line, and in a pod it is an ordinary log line.
A leaf module: models and components import it without importing the command line.
"""
import logging

LOGGER_NAME = "ctpipe.progress"
_logger = logging.getLogger(LOGGER_NAME)


def note(message: str) -> None:
    """Tells the user `message` (e.g. how the Trainer started, a drifted feature)."""
    _logger.info(message)
