"""Which served version is the warm-start base and the baseline, on real version folders."""
from __future__ import annotations

from pathlib import Path

from ctpipe.common.layout import SAVED_MODEL_FILE
from ctpipe.components.served_model.executor import complete_versions, resolve, snapshot_of
from ctpipe.models.card import ModelCard, write_card


def _version(base: Path, number: int, window_digest: str | None = None,
             complete: bool = True) -> None:
    folder = base / str(number)
    (folder / "variables").mkdir(parents=True)
    if complete:
        (folder / SAVED_MODEL_FILE).write_bytes(b"model")
    if window_digest is not None:
        write_card(str(folder), ModelCard(window_digest=window_digest, window_spans="1-4",
                                          newest_span=4, training="full", origin="scratch",
                                          steps=10, code_version="test"))


def test_nothing_served_yet(tmp_path):
    assert complete_versions(str(tmp_path / "missing")) == []
    assert resolve(str(tmp_path / "missing"), "digest") is None
    assert snapshot_of(str(tmp_path / "missing"), "digest") == '{"version": null}'


def test_the_newest_complete_version_is_served(tmp_path):
    _version(tmp_path, 3, "older-window")
    _version(tmp_path, 12, "old-window")
    _version(tmp_path, 20, complete=False)  # still being copied: TF Serving cannot load it
    (tmp_path / "notes").mkdir()
    assert complete_versions(str(tmp_path)) == [3, 12]
    version, card = resolve(str(tmp_path), "this-window")
    assert version == 12 and card.window_digest == "old-window"


def test_a_version_trained_on_this_window_is_passed_over(tmp_path):
    """A re-run on unchanged data compares with what the first run compared with."""
    _version(tmp_path, 3)  # exported without a card: still a served model
    _version(tmp_path, 7, "this-window")
    version, card = resolve(str(tmp_path), "this-window")
    assert (version, card) == (3, None)
    assert snapshot_of(str(tmp_path), "this-window") == '{"version": 3}'
    _version(tmp_path, 9, "next-window")
    assert resolve(str(tmp_path), "this-window")[0] == 9
