"""Rollout analysis replayed: how often an equal canary is rolled back, and how often and how
soon shifted canaries are caught.

Real answers: our model (trained here on 70 % of the shipped taxi trips, seeded) scores the
other 30 % with their true labels. Each replay sends a stream of one-trip requests drawn from
those trips; a request goes to the canary by its request id's hash (10 %, as the gateway
routes), and every outcome arrives labelled by request id. `ctpipe rollout analyze`'s verdict
(`ctpipe.rollout.verdict.judge`, default thresholds, 1 % false-rollback rate) is taken after
every 500 requests (a CronJob's look) on everything since the canary started.

Canaries: `equal` (the same answers as stable), `shifted +0.1` (every probability + 0.1, capped
at 1) and `AUC -0.03` (the same probabilities, re-ranked by noise on the logits until the AUC
is 0.03 lower: a worse ranking with an unchanged prediction distribution, which only the
labels can show). Equal canaries are replayed to the end without stopping at a promotion, so
"ever rolled back" counts every look.

    python -m bench.rollout [--runs 400] [--out build/bench/rollout.json]
"""
from __future__ import annotations

import csv
import hashlib

import numpy as np
import tensorflow as tf
from scipy.stats import rankdata

from bench import arguments, machine, report
from ctpipe.common import features
from ctpipe.dataprep import spans as data
from ctpipe.models.inputs import parse_examples
from ctpipe.models.model import HParams, build_model, fit_feature_stats
from ctpipe.rollout.figures import VersionFigures
from ctpipe.rollout.labels import BY_REQUEST_ID, Labels
from ctpipe.rollout.statistics import auc, log_loss
from ctpipe.rollout.thresholds import PROMOTE, ROLLBACK, Thresholds
from ctpipe.rollout.verdict import judge
from ctpipe.serving.client.examples import row_to_example
from ctpipe.serving.gateway.routing import key_point

CANARY_SHARE = 0.10
LOOK_EVERY = 500  # requests between two looks
MAX_REQUESTS = 40_000


def real_answers(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) of held-out trips from our model trained on the others."""
    with data.bundled_source().open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = int(len(rows) * 0.7)
    train, held_out = [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]

    def columns(part):
        serialized = tf.constant([row_to_example(r) for r in part])
        return {k: v.numpy() for k, v in parse_examples(serialized, with_label=False).items()}

    def labels(part):
        return np.array([features.is_big_tipper(float(r["tips"] or 0), float(r["fare"] or 0))
                         for r in part])

    tf.keras.utils.set_random_seed(seed)
    train_columns = columns(train)
    model = build_model(fit_feature_stats(train_columns, HParams()), HParams())
    model.fit(train_columns, labels(train).astype(np.float32)[:, None], batch_size=256,
              epochs=3, verbose=0)
    return model.predict(columns(held_out), verbose=0).ravel().astype(np.float64), \
        labels(held_out)


def reranked(probabilities: np.ndarray, labels: np.ndarray, auc_drop: float,
             seed: int = 1) -> np.ndarray:
    """The same probabilities in another order: ranked by logit + s x noise, s found by
    bisection so that the AUC falls by `auc_drop`."""
    logits = np.log(probabilities / (1 - probabilities))
    noise = np.random.default_rng(seed).standard_normal(len(probabilities))
    ordered = np.sort(probabilities)

    def with_noise(scale: float) -> np.ndarray:
        return ordered[rankdata(logits + scale * noise, method="ordinal").astype(int) - 1]

    target, low, high = auc(labels, probabilities) - auc_drop, 0.0, 10.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if auc(labels, with_noise(middle)) > target else (low, middle)
    return with_noise(low)


def _canary_side(request_ids: np.ndarray) -> np.ndarray:
    """Which requests the gateway routes to the canary: their ids' hash, as `key_point`."""
    return np.array([key_point(f"r{n}") < CANARY_SHARE * 100 for n in request_ids])


def replay(stable: np.ndarray, candidate: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
           stop_at_promote: bool) -> tuple[str, int, int | None]:
    """One canary's life: (first decisive verdict, requests when it came, requests at the
    first promotion or None)."""
    thresholds = Thresholds()
    trips = rng.integers(0, len(labels), MAX_REQUESTS)
    first_id = int(rng.integers(0, 2**40))
    canary = _canary_side(np.arange(first_id, first_id + MAX_REQUESTS))
    promoted_at = None
    for seen in range(LOOK_EVERY, MAX_REQUESTS + 1, LOOK_EVERY):
        on_canary, chosen = canary[:seen], trips[:seen]
        sides = []
        for role, version, answers, mask in (("stable", 1, stable, ~on_canary),
                                             ("canary", 2, candidate, on_canary)):
            probabilities = answers[chosen[mask]]
            sides.append(VersionFigures(
                role, version, int(mask.sum()), probabilities=probabilities,
                losses=log_loss(labels[chosen[mask]], probabilities)))
        verdict = judge(sides[0], sides[1], thresholds, Labels(BY_REQUEST_ID, {}))
        if verdict.recommendation == ROLLBACK:
            return ROLLBACK, seen, promoted_at
        if verdict.recommendation == PROMOTE and promoted_at is None:
            promoted_at = seen
            if stop_at_promote:
                return PROMOTE, seen, promoted_at
    return ("promote" if promoted_at else "undecided"), MAX_REQUESTS, promoted_at


def bench_rollout(runs: int = 400) -> dict[str, float]:
    probabilities, labels = real_answers()
    canaries = {"equal": probabilities,
                "shifted_plus_0_1": np.minimum(probabilities + 0.1, 1.0),
                "auc_minus_0_03": reranked(probabilities, labels, 0.03)}
    results: dict[str, float] = {
        "rollout_held_out_trips": len(labels),
        "rollout_stable_auc": round(auc(labels, probabilities), 4),
        "rollout_auc_minus_0_03_canary_auc": round(auc(labels, canaries["auc_minus_0_03"]), 4)}
    for name, candidate in canaries.items():
        seed = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big")
        rng = np.random.default_rng(seed)
        equal = name == "equal"
        outcomes = [replay(probabilities, candidate, labels, rng, stop_at_promote=not equal)
                    for _ in range(runs)]
        rolled_back = [at for verdict, at, _ in outcomes if verdict == "rollback"]
        promoted = [promoted for _, _, promoted in outcomes if promoted is not None]
        prefix = f"rollout_{name}"
        results[f"{prefix}_runs"] = runs
        results[f"{prefix}_rolled_back_share"] = round(len(rolled_back) / runs, 4)
        results[f"{prefix}_promoted_share"] = round(
            sum(1 for verdict, _, _ in outcomes if verdict == "promote") / runs, 4)
        if rolled_back:
            results[f"{prefix}_rollback_requests_median"] = int(np.median(rolled_back))
            results[f"{prefix}_rollback_requests_p90"] = int(np.percentile(rolled_back, 90))
        if promoted:
            results[f"{prefix}_promotion_requests_median"] = int(np.median(promoted))
    return results


def main() -> None:
    parser = arguments(__doc__, "build/bench-rollout", "rollout")
    parser.add_argument("--runs", type=int, default=400, help="replays per canary")
    args = parser.parse_args()
    started = machine()
    report("rollout", bench_rollout(args.runs), args.out, started)


if __name__ == "__main__":
    main()
