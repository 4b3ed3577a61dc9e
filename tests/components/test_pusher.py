"""The Pusher's version folder: a number no existing version has, and a push that is whole or
absent (a failure half-way leaves nothing a server could load, and no staging folder)."""
from __future__ import annotations

import time

import pytest
import tensorflow as tf

from ctpipe.common.layout import PUSH_RECORD_FILE, SAVED_MODEL_FILE
from ctpipe.components.pusher.executor import new_version, push


@pytest.fixture()
def model_dir(tmp_path):
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "variables" / "variables.index").write_bytes(b"index")
    (model / SAVED_MODEL_FILE).write_bytes(b"graph")
    return model


def test_a_new_version_is_the_push_time_moved_past_existing_ones(tmp_path):
    assert abs(new_version(str(tmp_path / "missing")) - time.time()) < 5
    now = int(time.time())
    for taken in (now, now + 1, now + 2):
        (tmp_path / str(taken)).mkdir()
    (tmp_path / ".push-staging").mkdir()
    assert new_version(str(tmp_path)) == now + 3


def test_a_push_writes_the_model_and_its_extras_in_place(tmp_path, model_dir):
    serving = tmp_path / "serving"
    serving.mkdir()
    target = push(str(model_dir), str(serving), 17, {PUSH_RECORD_FILE: b"{}"})
    assert target == f"{serving}/17"
    assert (serving / "17" / SAVED_MODEL_FILE).read_bytes() == b"graph"
    assert (serving / "17" / "variables" / "variables.index").read_bytes() == b"index"
    assert (serving / "17" / PUSH_RECORD_FILE).read_bytes() == b"{}"
    assert sorted(p.name for p in serving.iterdir()) == ["17"]


def test_a_push_that_fails_half_way_leaves_nothing(tmp_path, model_dir):
    serving = tmp_path / "serving"
    serving.mkdir()
    with pytest.raises(tf.errors.FailedPreconditionError):
        # An extra whose path is a folder of the model cannot be written: the copy has begun.
        push(str(model_dir), str(serving), 18, {"variables": b"not a folder"})
    assert list(serving.iterdir()) == []
