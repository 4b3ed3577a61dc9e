"""Pusher: a blessed candidate becomes a new version in TF Serving's layout."""
