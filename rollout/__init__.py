"""`ctpipe rollout analyze`: is the canary (or shadow) as good as stable? Promote, wait or roll
back, and with `--apply` move the labels in TF Serving's model config file.

Figures per version, from what the gateway records:
- the prediction log (`--logs PREFIX`): every logged answer since the candidate's first one
  (cumulative, so that repeated looks are one sequential test): the predicted probabilities,
  and with a label file (`--labels CSV`) each labelled trip's log loss and the AUC with its
  standard error (shown, not decided on); outcomes are joined to the answers by the request
  id the gateway returned, or by the trips' feature values (`--join-on-features`, the
  explicit fallback);
- the gateways' Prometheus metrics (`--metrics URL`, at every address the host resolves to):
  requests, errors, p99 latency and the histogram of predicted probabilities per version,
  over `--window-seconds` (two scrapes that far apart; 0: the totals since the gateways
  started).

Verdict: `wait` while either side has answered fewer than `min_requests`; then four tests on
confidence sequences that hold at every look (log loss, mean predicted probability, error
rate, latency), sharing the false-rollback rate: `rollback` as soon as one finds the candidate
worse, `promote` when none does and the quality tests show it within their margins,
otherwise `wait`. The earth mover's distance between the two prediction distributions is
shown, not decided on.

Modules: `statistics` (distances, AUC, log loss, histogram quantiles) and `sequential` (the
confidence sequences); the readers `prediction_logs`, `labels` and `metrics`, which fill in
each version's `figures`; `verdict` (judge, analyze, apply) and its `thresholds`. The tests'
table and their measured error rates: docs/gateway-rollout-scoring.md.
"""
