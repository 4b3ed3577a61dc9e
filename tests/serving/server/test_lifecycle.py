"""Version lifecycle as TF Serving runs it: swaps without failed requests, failed loads that keep
the old version serving, retries, policies, labels, config reloads, warm-up, start-up failure."""
from __future__ import annotations

import shutil
import threading
import time

import grpc
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, prediction_log_pb2

from ctpipe.serving.server.errors import StartupError
from tests.serving.conftest import MODEL_NAME, predict_request, push_version

State = get_model_status_pb2.ModelVersionStatus


def _status(stubs, name=MODEL_NAME) -> dict[int, tuple[int, int, str]]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return {s.version: (s.state, s.status.error_code, s.status.error_message)
            for s in stubs.model.GetModelStatus(request, timeout=10).model_version_status}


def _wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def _served_version(stubs, examples, **spec) -> int:
    return stubs.prediction.Predict(predict_request(examples, **spec), timeout=10).model_spec.version.value


def test_new_version_swaps_in_under_load_without_a_failed_request(
        tmp_path, saved_model_dir, start_server, serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 1)
    _, stubs = start_server(tmp_path / "m", file_system_poll_wait_seconds=1)
    failures, versions, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            try:
                versions.append(_served_version(stubs, serialized_examples[:4]))
            except grpc.RpcError as err:
                failures.append(err)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        push_version(saved_model_dir, tmp_path / "m", 2)
        pushed = time.monotonic()
        _wait_for(lambda: versions and versions[-1] == 2)
        swap_seconds = time.monotonic() - pushed
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert versions[0] == 1 and versions[-1] == 2
    assert swap_seconds < 1 + 15, "poll interval + load time (generous bound for a shared machine)"
    assert _status(stubs) == {2: (State.AVAILABLE, 0, ""), 1: (State.END, 0, "")}


def test_a_corrupt_version_leaves_the_old_one_serving_and_shows_its_error(
        tmp_path, saved_model_dir, start_server, serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 1)
    handle, stubs = start_server(tmp_path / "m", file_system_poll_wait_seconds=-1,
                                 max_num_load_retries=0)
    corrupt = push_version(saved_model_dir, tmp_path / "m", 2)
    (corrupt / "saved_model.pb").write_bytes(b"not a protobuf")
    handle.manager.poll_all()
    state, code, message = _status(stubs)[2]
    assert (state, code) == (State.END, grpc.StatusCode.UNKNOWN.value[0])
    assert message
    assert _status(stubs)[1] == (State.AVAILABLE, 0, "")
    assert _served_version(stubs, serialized_examples[:2]) == 1
    handle.manager.poll_all()  # a version that ended in error is not retried later
    assert _status(stubs)[2][0] == State.END


def test_a_version_without_saved_model_pb_waits_then_fails_with_tf_servings_message(
        tmp_path, saved_model_dir, start_server, serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 1)
    handle, stubs = start_server(tmp_path / "m", file_system_poll_wait_seconds=-1,
                                 max_num_load_retries=0)
    half = tmp_path / "m" / "2"
    shutil.copytree(saved_model_dir / "variables", half / "variables")
    handle.manager.poll_all()  # first sight: treated as still being copied
    assert 2 not in _status(stubs)
    handle.manager.poll_all()  # unchanged and still no saved_model.pb: load it, and fail
    state, _, message = _status(stubs)[2]
    assert state == State.END
    assert message.startswith("Could not find SavedModel .pb or .pbtxt at supplied export "
                              "directory path")
    assert _served_version(stubs, serialized_examples[:1]) == 1


def test_failed_load_is_retried(tmp_path, saved_model_dir, start_server):
    push_version(saved_model_dir, tmp_path / "m", 1)
    handle, stubs = start_server(tmp_path / "m", file_system_poll_wait_seconds=-1,
                                 max_num_load_retries=3, load_retry_interval_micros=0)
    version = push_version(saved_model_dir, tmp_path / "m", 2)
    good = (version / "saved_model.pb").read_bytes()
    (version / "saved_model.pb").write_bytes(b"broken")
    handle.manager.poll_all()
    assert _status(stubs)[2][0] == State.LOADING, "a retry is pending"
    (version / "saved_model.pb").write_bytes(good)
    handle.manager.poll_all()
    assert _status(stubs)[2] == (State.AVAILABLE, 0, "")


def test_version_policies_labels_and_reload_without_restart(
        tmp_path, saved_model_dir, start_server, serialized_examples):
    for version in (1, 2, 3):
        push_version(saved_model_dir, tmp_path / "m", version)

    def config(policy: str, labels: str = "") -> model_management_pb2.ReloadConfigRequest:
        return text_format.Parse(f"""config {{ model_config_list {{ config {{
            name: "{MODEL_NAME}" base_path: "{tmp_path / 'm'}" model_platform: "tensorflow"
            model_version_policy {{ {policy} }} {labels} }} }} }}""",
                                 model_management_pb2.ReloadConfigRequest())

    config_file = tmp_path / "models.config"
    config_file.write_text(str(config("specific { versions: 1 }").config))
    _, stubs = start_server(model_config_file=str(config_file), file_system_poll_wait_seconds=-1)
    assert _status(stubs) == {1: (State.AVAILABLE, 0, "")}

    stubs.model.HandleReloadConfigRequest(
        config("all {}", 'version_labels { key: "stable" value: 1 } '
                         'version_labels { key: "canary" value: 3 }'), timeout=60)
    assert {v for v, s in _status(stubs).items() if s[0] == State.AVAILABLE} == {1, 2, 3}
    assert _served_version(stubs, serialized_examples[:1], version_label="canary") == 3
    assert _served_version(stubs, serialized_examples[:1]) == 3

    stubs.model.HandleReloadConfigRequest(
        config("all {}", 'version_labels { key: "stable" value: 2 }'), timeout=60)
    assert _served_version(stubs, serialized_examples[:1], version_label="stable") == 2

    for label, code, named in (('key: "stable" value: 9', "FAILED_PRECONDITION", "version 9"),
                               ('key: "not-a-name" value: 2', "INVALID_ARGUMENT", "not-a-name")):
        with pytest.raises(grpc.RpcError) as caught:
            stubs.model.HandleReloadConfigRequest(
                config("all {}", f"version_labels {{ {label} }}"), timeout=60)
        assert caught.value.code() == getattr(grpc.StatusCode, code)
        assert named in caught.value.details()
        assert _served_version(stubs, serialized_examples[:1], version_label="stable") == 2

    stubs.model.HandleReloadConfigRequest(config("latest { num_versions: 2 }"), timeout=60)
    assert {v for v, s in _status(stubs).items() if s[0] == State.AVAILABLE} == {2, 3}

    # No config at all: TF Serving takes no action (a config with an empty list unloads all).
    stubs.model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=60)
    assert {v for v, s in _status(stubs).items() if s[0] == State.AVAILABLE} == {2, 3}

    empty = model_management_pb2.ReloadConfigRequest()
    empty.config.model_config_list.SetInParent()
    stubs.model.HandleReloadConfigRequest(empty, timeout=60)
    with pytest.raises(grpc.RpcError) as caught:
        _served_version(stubs, serialized_examples[:1])
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_config_file_is_re_read_when_polled(tmp_path, saved_model_dir, start_server,
                                            serialized_examples):
    for version in (1, 2):
        push_version(saved_model_dir, tmp_path / "m", version)
    config_file = tmp_path / "models.config"
    template = ('model_config_list {{ config {{ name: "{name}" base_path: "{path}" '
                'model_platform: "tensorflow" model_version_policy {{ all {{}} }} '
                'version_labels {{ key: "stable" value: {stable} }} }} }}')
    config_file.write_text(template.format(name=MODEL_NAME, path=tmp_path / "m", stable=1))
    _, stubs = start_server(model_config_file=str(config_file), file_system_poll_wait_seconds=-1,
                            model_config_file_poll_wait_seconds=1)
    assert _served_version(stubs, serialized_examples[:1], version_label="stable") == 1
    config_file.write_text(template.format(name=MODEL_NAME, path=tmp_path / "m", stable=2))
    _wait_for(lambda: _served_version(stubs, serialized_examples[:1], version_label="stable") == 2)


def test_every_version_folder_gone_unloads_the_model(tmp_path, saved_model_dir, start_server,
                                                     serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 1)
    handle, stubs = start_server(tmp_path / "m", file_system_poll_wait_seconds=-1)
    shutil.rmtree(tmp_path / "m" / "1")
    handle.manager.poll_all()
    with pytest.raises(grpc.RpcError) as caught:
        _served_version(stubs, serialized_examples[:1])
    assert caught.value.details() == f"Servable not found for request: Latest({MODEL_NAME})"
    assert _status(stubs)[1] == (State.END, 0, "")


def _write_warmup(version_dir, request) -> None:
    entry = prediction_log_pb2.PredictionLog()
    entry.predict_log.request.CopyFrom(request)
    (version_dir / "assets.extra").mkdir(exist_ok=True)  # the export keeps the Keras model there
    with tf.io.TFRecordWriter(str(version_dir / "assets.extra" / "tf_serving_warmup_requests")) as w:
        w.write(entry.SerializeToString())


def test_warmup_requests_are_replayed_and_a_failing_warmup_fails_the_load(
        tmp_path, saved_model_dir, start_server, serialized_examples):
    good = push_version(saved_model_dir, tmp_path / "m", 1)
    _write_warmup(good, predict_request(serialized_examples[:2]))
    handle, stubs = start_server(tmp_path / "m", file_system_poll_wait_seconds=-1,
                                 max_num_load_retries=0)
    assert _status(stubs)[1][0] == State.AVAILABLE
    bad = tmp_path / "staging" / "2"
    shutil.copytree(saved_model_dir, bad)
    _write_warmup(bad, predict_request(serialized_examples[:2], signature_name="nope"))
    bad.rename(tmp_path / "m" / "2")
    handle.manager.poll_all()
    state, _, message = _status(stubs)[2]
    assert state == State.END and 'Serving signature key "nope" not found.' in message
    assert _served_version(stubs, serialized_examples[:1]) == 1


def test_start_up_fails_when_the_initial_version_cannot_load(tmp_path, saved_model_dir,
                                                            start_server):
    version = push_version(saved_model_dir, tmp_path / "m", 1)
    (version / "saved_model.pb").write_bytes(b"broken")
    with pytest.raises(StartupError, match="version: 1"):
        start_server(tmp_path / "m", max_num_load_retries=0)
    with pytest.raises(StartupError, match="Could not find base path"):
        start_server(tmp_path / "missing")


def test_labels_for_unavailable_versions_need_the_flag(tmp_path, saved_model_dir, start_server,
                                                       serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 1)
    config_file = tmp_path / "models.config"
    config_file.write_text(f'model_config_list {{ config {{ name: "{MODEL_NAME}" '
                           f'base_path: "{tmp_path / "m"}" model_platform: "tensorflow" '
                           'version_labels { key: "canary" value: 2 } } }')
    with pytest.raises(StartupError, match="version 2 of model"):
        start_server(model_config_file=str(config_file), file_system_poll_wait_seconds=-1)
    handle, stubs = start_server(model_config_file=str(config_file),
                                 file_system_poll_wait_seconds=-1,
                                 allow_version_labels_for_unavailable_models=True)
    with pytest.raises(grpc.RpcError) as caught:
        _served_version(stubs, serialized_examples[:1], version_label="canary")
    assert caught.value.details() == f"Servable not found for request: Specific({MODEL_NAME}, 2)"
    push_version(saved_model_dir, tmp_path / "m", 2)
    handle.manager.poll_all()
    assert _served_version(stubs, serialized_examples[:1], version_label="canary") == 2
