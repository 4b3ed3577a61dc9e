"""Performance figures (`make bench`): printed and written to bench-results.json."""


def report(results: dict[str, float], out: str) -> None:
    """Prints one figure per line and writes them as JSON (one key per figure, unit in the key)."""
    import json
    from pathlib import Path

    width = max(map(len, results)) + 2
    for key, value in results.items():
        print(f"{key:<{width}} {value}")
    Path(out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")
