"""The gateway's prediction log (`--logs PREFIX`): each version's answered probabilities and,
joined with a label file, the log loss and AUC of the labelled trips it answered."""
from __future__ import annotations

import numpy as np

from ctpipe.common import features
from ctpipe.rollout.figures import VersionFigures
from ctpipe.rollout.labels import BY_REQUEST_ID, Labels, trip_key
from ctpipe.rollout.statistics import auc, auc_standard_error, log_loss
from ctpipe.serving.client import protos
from ctpipe.serving.prediction_log import read_logs, request_id


def figures_from_logs(prefix: str, model: str, versions: dict[int, VersionFigures],
                      candidate: int, labels: Labels | None) -> None:
    """Adds the logged answers of `versions` to their figures: every record from the
    candidate's first logged answer on (cumulative, so repeated looks are one sequential
    test)."""
    records = []
    for record in read_logs(prefix):
        spec = record.log_metadata.model_spec
        if spec.name == model and spec.version.value in versions and record.HasField(
                "predict_log"):
            records.append(record)
    started = min((r.log_metadata.timestamp_secs for r in records
                   if r.log_metadata.model_spec.version.value == candidate), default=None)
    scores: dict[int, list[float]] = {v: [] for v in versions}
    joined: dict[int, tuple[list[int], list[float]]] = {v: ([], []) for v in versions}
    for record in records:
        if started is None or record.log_metadata.timestamp_secs < started:
            continue
        version = record.log_metadata.model_spec.version.value
        answered = list(record.predict_log.response.outputs[features.PREDICTION_KEY].float_val)
        versions[version].requests += 1
        scores[version].extend(answered)
        if labels is None:
            continue
        if labels.join == BY_REQUEST_ID:
            identity = request_id(record)
            keys = [(identity, position) for position in range(len(answered))]
        else:
            sent = record.predict_log.request.inputs[features.EXAMPLES_KEY].string_val
            keys = [trip_key(protos.Example.FromString(data)) for data in sent]
        for key, score in zip(keys, answered):
            label = labels.by_key.get(key)
            if label is not None:
                labels.matched.add(key)
                joined[version][0].append(label)
                joined[version][1].append(score)
    for version, figures in versions.items():
        figures.probabilities = np.array(scores[version], dtype=np.float64)
        if labels is None:
            continue
        truth, predicted = (np.array(values, dtype=np.float64) for values in joined[version])
        figures.losses = log_loss(truth, predicted)
        figures.auc = auc(truth, predicted) if len(truth) else None
        if figures.auc is not None:
            positives = int(np.sum(truth == 1))
            figures.auc_standard_error = auc_standard_error(figures.auc, positives,
                                                            len(truth) - positives)
