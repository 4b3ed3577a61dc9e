"""Performance figures (`make bench`): printed, written under build/bench/ and into
docs/performance.md (bench/performance.py)."""
import argparse
import datetime
import json
import os
import platform
from pathlib import Path

RESULTS_DIR = Path("build") / "bench"


def machine() -> str:
    """What the figures were measured on, in one line: CPU, cores, memory, system, Python, and
    the load average when the measurement started (figures on a busy machine are slower)."""
    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory_kib = next((int(line.split()[1]) for line in _lines("/proc/meminfo")
                       if line.startswith("MemTotal:")), 0)
    system = next((line.split("=", 1)[1].strip().strip('"') for line in _lines("/etc/os-release")
                   if line.startswith("PRETTY_NAME=")), platform.platform())
    load = os.getloadavg()[0]
    return (f"{cpu}, {os.cpu_count()} cores, {memory_kib / 2**20:.1f} GiB, {system}, "
            f"{platform.python_implementation()} {platform.python_version()}; "
            f"load average {load:.1f} at the start")


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def now() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def record(figures: dict[str, float], measured_on: str, measured_at: str | None = None) -> dict:
    """One section of a results file: its figures, when and where they were measured."""
    return {"measured": measured_at or now(), "machine": measured_on, "figures": figures}


def write_results(sections: dict[str, dict], out: str | Path) -> None:
    """A results file, which `python -m bench.performance FILE` merges into the page."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sections": sections}, indent=2) + "\n")
    print(f"written to {path}")


def report(section: str, results: dict[str, float], out: str | Path,
           measured_on: str | None = None) -> None:
    """Prints one figure per line and writes them as one section of a results file (one key
    per figure, unit in the key)."""
    print_figures(results)
    write_results({section: record(results, measured_on or machine())}, out)


def print_figures(figures: dict[str, float]) -> None:
    width = max(map(len, figures)) + 2
    for key, value in figures.items():
        print(f"{key:<{width}} {value}")


def arguments(doc: str, work: str, section: str) -> argparse.ArgumentParser:
    """The command line every bench module shares: its scratch folder and its results file."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--work", default=work, help="scratch folder (recreated)")
    parser.add_argument("--out", default=str(RESULTS_DIR / f"{section}.json"),
                        help="figures written here as JSON (bench/performance.py merges them "
                             "into docs/performance.md)")
    return parser
