"""Performance figures (`make bench`): printed and written to bench-results.json."""
