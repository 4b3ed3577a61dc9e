"""Event files read back with TensorBoard's own reader (EventAccumulator)."""
from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util


def read_events(logdir: Path) -> event_accumulator.EventAccumulator:
    """Every summary of a folder's event files (no sampling), as TensorBoard loads them."""
    reader = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.GRAPH: 1})
    reader.Reload()
    return reader


def curve(reader: event_accumulator.EventAccumulator, tag: str) -> dict[int, float]:
    """step -> value of a scalar; fails when a step was logged twice (two curves)."""
    events = reader.Tensors(tag)
    values = {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events}
    assert len(values) == len(events), f"{tag}: a step logged twice"
    return values


def hparams(reader: event_accumulator.EventAccumulator) -> dict[str, object]:
    """The hyperparameters of the hparams plugin's session start (exactly one)."""
    (content,) = reader.PluginTagToContent("hparams").values()
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
