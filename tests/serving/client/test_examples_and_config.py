"""Client-side pieces that need no server: tf.Example building, the label file, import cost."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from ctpipe.common import features
from ctpipe.models.inputs import parse_examples
from ctpipe.serving.client import protos, version_labels
from ctpipe.serving.client.errors import ExampleError, ModelConfigError
from ctpipe.serving.client.examples import read_rows, row_to_example, rows_to_examples

WORKTREE = Path(__file__).resolve().parents[3]


def test_rows_become_examples_of_the_model_features_only(taxi_rows):
    _, rows = taxi_rows
    row = dict(rows[0], fare="12.5", trip_seconds="600", company="", payment_type="Cash")
    example = protos.Example.FromString(row_to_example(row))
    feature = example.features.feature
    assert set(feature) == {f.name for f in features.FEATURES} - {"company"} - {
        name for name, value in row.items() if value == ""}
    assert features.TIPS not in feature and features.TIMESTAMP not in feature
    assert feature["fare"].float_list.value == [12.5]
    assert feature["trip_seconds"].int64_list.value == [600]
    assert feature["payment_type"].bytes_list.value == [b"Cash"]


def test_other_columns_for_a_model_with_other_inputs(taxi_rows):
    """A model that parses the timestamp too (TFX's own taxi model, in the benchmark)."""
    _, rows = taxi_rows
    row = dict(rows[0], company="")
    columns = [(features.TIMESTAMP, "int64"), ("company", "string")]
    example = protos.Example.FromString(row_to_example(row, columns=columns, empty_lists=True))
    feature = example.features.feature
    assert set(feature) == {features.TIMESTAMP, "company"}
    assert feature[features.TIMESTAMP].int64_list.value == [int(row[features.TIMESTAMP])]
    assert feature["company"].HasField("bytes_list") and not feature["company"].bytes_list.value
    with pytest.raises(ExampleError, match="row has no column 'pickup_census_tract'"):
        row_to_example({}, columns=[("pickup_census_tract", "int64")], empty_lists=True)


def test_examples_parse_like_the_training_input(taxi_rows):
    _, rows = taxi_rows
    parsed = parse_examples(tf.constant(rows_to_examples(rows[:50])), with_label=False)
    for index, row in enumerate(rows[:50]):
        for f in features.FEATURES:
            value = parsed[f.name][index].numpy()
            expected = row[f.name] if row[f.name] != "" else f.default
            if f.dtype == "string":
                assert value.decode() == expected
            else:
                assert value == pytest.approx(float(expected), rel=1e-6)


def test_bad_cells_are_named_with_row_and_column():
    with pytest.raises(ExampleError, match=r"trips.csv row 2, column 'trip_seconds' \(int64\)"):
        rows_to_examples([{"fare": "3.0"}, {"trip_seconds": "12.5"}], "trips.csv")
    with pytest.raises(ExampleError, match="column 'fare'"):
        row_to_example({"fare": "abc"})
    with pytest.raises(ExampleError, match="none of the model's features"):
        row_to_example({"tips": "1.0"})


def test_training_rows_become_examples_as_csv_example_gen_writes_them(taxi_rows):
    _, rows = taxi_rows
    row = dict(rows[0], company="", trip_seconds="600", **{features.LABEL: "1"})

    def example(row, with_label=True):
        return protos.Example.FromString(
            row_to_example(row, with_label=with_label, empty_lists=True))

    feature = example(row).features.feature
    assert set(feature) == set(features.FEATURE_NAMES) | {features.LABEL}
    assert feature["company"].WhichOneof("kind") == "bytes_list"
    assert list(feature["company"].bytes_list.value) == []
    assert list(feature["trip_seconds"].int64_list.value) == [600]
    assert list(feature[features.LABEL].int64_list.value) == [1]
    assert features.LABEL not in example(row, with_label=False).features.feature
    with pytest.raises(ExampleError, match="row has no column 'big_tipper'"):
        example(rows[0])


def test_json_and_csv_inputs(tmp_path, csv_writer, taxi_rows):
    header, rows = taxi_rows
    csv_path = csv_writer(tmp_path / "trips.csv", header, rows[:3])
    (tmp_path / "trips.json").write_text(json.dumps({"instances": [{"fare": 3.5}, {"fare": None}]}))
    assert read_rows(csv_path) == rows[:3]
    assert read_rows(tmp_path / "trips.json") == [{"fare": 3.5}, {"fare": None}]
    (tmp_path / "bad.json").write_text(json.dumps({"fare": 1}))
    with pytest.raises(ExampleError, match="list of objects"):
        read_rows(tmp_path / "bad.json")
    with pytest.raises(ExampleError, match="not found"):
        read_rows(tmp_path / "missing.csv")


def test_client_import_does_not_load_tensorflow():
    code = ("import sys; from ctpipe.cli import build_parser; build_parser(); "
            "assert 'ctpipe.serving.client.protos' not in sys.modules, 'the parser loaded protos'; "
            "import ctpipe.serving.client.grpc_client, ctpipe.serving.client.version_labels, "
            "ctpipe.serving.client.examples; "
            "loaded = sorted(m for m in sys.modules "
            "                if m.split('.')[0] in ('tensorflow', 'tensorflow_serving')); "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=WORKTREE, timeout=60)


def test_missing_generated_protos_are_an_error_naming_the_build_step(tmp_path):
    code = ("from pathlib import Path; import ctpipe.serving.client.generate_protos as build; "
            f"build.DESCRIPTOR_SET = Path({str(tmp_path / 'missing.binpb')!r}); "
            "from ctpipe.common.errors import UserError\n"
            "try:\n    import ctpipe.serving.client.protos\n"
            "except UserError as err:\n    print(err)\n"
            "else:\n    raise SystemExit('imported without its descriptor set')")
    answer = subprocess.run([sys.executable, "-c", code], cwd=WORKTREE, timeout=60,
                            capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == (
        f"{tmp_path / 'missing.binpb'} is missing: it is generated at build time; run "
        "`make venv` (or `python -m ctpipe.serving.client.generate_protos`) to build it")


@pytest.fixture()
def base_path(tmp_path) -> Path:
    for version in (3, 5, 8):
        (tmp_path / "big_tipper" / str(version)).mkdir(parents=True)
    (tmp_path / "big_tipper" / "not-a-version").mkdir()
    return tmp_path / "big_tipper"


def _config(tmp_path, base_path, labels=None) -> Path:
    path = tmp_path / "models.config"
    version_labels.write_initial_config(path, "big_tipper", str(base_path), labels)
    return path


def test_label_moves_and_rollback_goes_to_the_previous_version(tmp_path, base_path):
    path = _config(tmp_path, base_path, {"stable": 3})
    change = version_labels.set_label(path, "big_tipper", "canary", 8)
    assert (change.previous_version, change.version) == (None, 8)
    version_labels.set_label(path, "big_tipper", "stable", 8)
    entry = version_labels.model_entry(version_labels.read_config(path), "big_tipper")
    assert dict(entry.version_labels) == {"stable": 8, "canary": 8}
    assert sorted(entry.model_version_policy.specific.versions) == [3, 8]

    rolled = version_labels.rollback(path, "big_tipper")
    assert (rolled.previous_version, rolled.version) == (8, 5)
    entry = version_labels.model_entry(version_labels.read_config(path), "big_tipper")
    assert entry.version_labels["stable"] == 5 and 5 in entry.model_version_policy.specific.versions
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.parametrize("label, version, message", [
    ("stable-1", 3, r"must match \[a-zA-Z0-9_\]\+"),
    ("stable", 4, r"version 4 of 'big_tipper' not found .* \[3, 5, 8\]"),
])
def test_bad_label_or_version_leaves_the_file_unchanged(tmp_path, base_path, label, version,
                                                        message):
    path = _config(tmp_path, base_path, {"stable": 3})
    before = path.read_bytes()
    with pytest.raises(ModelConfigError, match=message):
        version_labels.set_label(path, "big_tipper", label, version)
    assert path.read_bytes() == before


def test_latest_policy_refuses_labels_on_versions_it_does_not_load(tmp_path, base_path):
    path = _config(tmp_path, base_path)
    config = version_labels.read_config(path)
    config.model_config_list.config[0].model_version_policy.latest.num_versions = 2
    version_labels.write_config(path, config)
    version_labels.set_label(path, "big_tipper", "canary", 8)
    with pytest.raises(ModelConfigError, match="latest 2 .5, 8."):
        version_labels.set_label(path, "big_tipper", "stable", 3)
    with pytest.raises(ModelConfigError, match="'other' is not in the config"):
        version_labels.set_label(path, "other", "stable", 3)
    with pytest.raises(ModelConfigError, match="no label 'stable'"):
        version_labels.rollback(path, "big_tipper")


@pytest.mark.parametrize("failure", ["write", "rename"])
def test_a_failed_config_write_leaves_the_old_file_and_no_temporary_file(tmp_path, base_path,
                                                                         monkeypatch, failure):
    path = _config(tmp_path, base_path, {"stable": 3})
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync" if failure == "write" else "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        version_labels.set_label(path, "big_tipper", "canary", 8)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big_tipper", "models.config"]
