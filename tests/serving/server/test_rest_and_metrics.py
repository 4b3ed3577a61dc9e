"""TF Serving's REST API and Prometheus endpoint on a real server (aiohttp over 127.0.0.1)."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import requests

from tests.serving.conftest import MODEL_NAME, in_process_server, push_version


@pytest.fixture(scope="module")
def rest(tmp_path_factory, classify_model_dir):
    root = tmp_path_factory.mktemp("rest")
    push_version(classify_model_dir, root / "m", 4)
    monitoring = root / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }')
    with in_process_server(root / "m", rest_api_port=-1, file_system_poll_wait_seconds=-1,
                           monitoring_config_file=str(monitoring)) as (handle, _):
        yield f"http://127.0.0.1:{handle.rest_port}"


def _b64(examples):
    return [{"b64": base64.b64encode(e).decode()} for e in examples]


def test_status_and_metadata(rest):
    status = requests.get(f"{rest}/v1/models/{MODEL_NAME}", timeout=10).json()
    assert status == {"model_version_status": [
        {"version": "4", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert requests.get(f"{rest}/v1/models/{MODEL_NAME}/versions/4", timeout=10).status_code == 200
    metadata = requests.get(f"{rest}/v1/models/{MODEL_NAME}/metadata", timeout=10).json()
    assert metadata["model_spec"]["version"] == "4"
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"]["examples"]["dtype"] == "DT_STRING"


def test_predict_row_and_columnar_formats(rest, serialized_examples, reference_scores):
    url = f"{rest}/v1/models/{MODEL_NAME}:predict"
    rows = requests.post(url, json={"instances": _b64(serialized_examples[:5])}, timeout=10)
    assert rows.status_code == 200
    np.testing.assert_allclose(rows.json()["predictions"], reference_scores[:5], rtol=1e-6)
    named = requests.post(url, json={"instances": [{"examples": v} for v in
                                                   _b64(serialized_examples[:2])]}, timeout=10)
    np.testing.assert_allclose(named.json()["predictions"], reference_scores[:2], rtol=1e-6)
    columns = requests.post(f"{rest}/v1/models/{MODEL_NAME}/versions/4:predict",
                            json={"inputs": {"examples": _b64(serialized_examples[:3])}}, timeout=10)
    np.testing.assert_allclose(columns.json()["outputs"], reference_scores[:3], rtol=1e-6)


def test_classify_and_regress_take_json_examples(rest, taxi_rows):
    _, trips = taxi_rows
    example = {"trip_miles": float(trips[0]["trip_miles"]), "fare": float(trips[0]["fare"]),
               "payment_type": trips[0]["payment_type"], "trip_start_hour": int(trips[0]["trip_start_hour"])}
    classified = requests.post(f"{rest}/v1/models/{MODEL_NAME}:classify", timeout=10, json={
        "signature_name": "classification", "examples": [example, example]}).json()
    assert [[label for label, _ in row] for row in classified["result"]] == [["0", "1"]] * 2
    scores = [row[1][1] for row in classified["result"]]
    regressed = requests.post(f"{rest}/v1/models/{MODEL_NAME}:regress", timeout=10, json={
        "signature_name": "regression", "context": {"company": "x"}, "examples": [example]}).json()
    assert 0 <= regressed["result"][0] <= 1 and 0 <= scores[0] <= 1


@pytest.mark.parametrize("method,path,body,status,message", [
    ("get", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("post", "/v1/models/nope:predict", {"instances": ["x"]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("post", f"/v1/models/{MODEL_NAME}/versions/9:predict", {"instances": ["x"]}, 404,
     f"Servable not found for request: Specific({MODEL_NAME}, 9)"),
    ("post", f"/v1/models/{MODEL_NAME}:predict", {"signature_name": "X", "instances": ["x"]}, 400,
     'Serving signature key "X" not found.'),
    ("post", f"/v1/models/{MODEL_NAME}:predict", {"nothing": 1}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("post", f"/v1/models/{MODEL_NAME}/labels/gold:predict", {"instances": ["x"]}, 400,
     "Unrecognized servable version label: gold"),
    ("post", f"/v1/models/{MODEL_NAME}:classify", {"examples": [{"fare": 1.0}]}, 400,
     "Expected classification signature outputs to contain at least one of classes or scores"),
])
def test_errors_are_json_with_tf_servings_http_codes(rest, method, path, body, status, message):
    response = getattr(requests, method)(f"{rest}{path}", json=body, timeout=10)
    assert (response.status_code, response.json()) == (status, {"error": message})


def test_malformed_json_is_a_400(rest):
    response = requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict", data=b"{not json",
                             timeout=10)
    assert response.status_code == 400
    assert response.json()["error"].startswith("JSON Parse error")


def _count(text: str, sample: str) -> float:
    line = next((l for l in text.splitlines() if l.startswith(sample + " ")), f"{sample} 0")
    return float(line.rsplit(" ", 1)[1])


def test_prometheus_metrics_count_requests(rest, serialized_examples):
    ok = f':tensorflow:serving:request_count{{model_name="{MODEL_NAME}",status="OK"}}'
    failed = f':tensorflow:serving:request_count{{model_name="{MODEL_NAME}",status="FAILED_PRECONDITION"}}'
    latency = (f':tensorflow:serving:request_latency_count{{API="Predict",entrypoint="REST",'
               f'model_name="{MODEL_NAME}"}}')
    url = f"{rest}/monitoring/prometheus/metrics"
    before = requests.get(url, timeout=10).text
    requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict",
                  json={"instances": _b64(serialized_examples[:1])}, timeout=10)
    requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict", json={"signature_name": "X",
                                                                  "instances": ["x"]}, timeout=10)
    text = requests.get(url, timeout=10).text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert _count(text, ok) == _count(before, ok) + 1
    assert _count(text, failed) == _count(before, failed) + 1
    assert _count(text, latency) == _count(before, latency) + 2


@pytest.mark.parametrize("body", [
    {"instances": "not a list"}, {"instances": [1, 2]}, {"instances": [{"b64": "%%%"}]},
    {"inputs": {"nope": ["x"]}}, {"instances": [{"examples": {"b64": ""}}, {"other": 1}]},
    [1, 2], {"instances": [[[[]]]]},
])
def test_malformed_predict_bodies_are_400s_and_the_server_keeps_serving(rest, body,
                                                                        serialized_examples):
    response = requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict", json=body, timeout=10)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    healthy = requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict",
                            json={"instances": _b64(serialized_examples[:1])}, timeout=10)
    assert healthy.status_code == 200
