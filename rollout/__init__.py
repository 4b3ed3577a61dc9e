"""`ctpipe rollout analyze`: is the canary (or shadow) as good as stable? Promote or roll back.

Figures per version, over a window, from what the gateway records:
- the prediction log (`--logs PREFIX`): each answer's probabilities (records whose
  `timestamp_secs` is within the window), and the AUC on the logged trips whose label has
  arrived (`--labels CSV`: newly labelled trips, joined to logged examples by their feature
  values, since a trip carries no id);
- the gateway's Prometheus metrics (`--metrics URL`, one per gateway pod): requests, error
  rate and p99 latency per version, and the prediction histogram. Counters are cumulative, so
  the window is two scrapes `window` seconds apart (0: the totals since the gateway started).

Distance between prediction distributions: the earth mover's (Wasserstein-1) distance on
[0, 1], i.e. how far, on average, probability mass moved; from samples exactly, from the
0.05-wide histogram buckets within ±0.05.

Verdict: `wait` while either side has fewer than `min_requests`; `rollback` when the candidate's
error rate exceeds stable's by more than `max_error_rate_increase`, its p99 exceeds stable's
by more than `max_p99_ratio` (plus 2 ms of slack for noise), the distance exceeds
`max_prediction_shift`, or its AUC is below stable's by more than `max_auc_drop` (both with at
least `min_labelled` labelled trips of both classes); `promote` otherwise.
"""
