"""Performance figures (`make bench`): printed and written to bench-results.json."""
import argparse
import json
from pathlib import Path


def report(results: dict[str, float], out: str) -> None:
    """Prints one figure per line and writes them as JSON (one key per figure, unit in the key)."""
    width = max(map(len, results)) + 2
    for key, value in results.items():
        print(f"{key:<{width}} {value}")
    Path(out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


def arguments(doc: str, work: str, out: str) -> argparse.ArgumentParser:
    """The command line every bench module shares: its scratch folder and its results file."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--work", default=work, help="scratch folder (recreated)")
    parser.add_argument("--out", default=out, help="figures written here as JSON")
    return parser
