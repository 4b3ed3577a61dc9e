"""How to start `ctpipe COMMAND` as a child process of this interpreter: the demo's model
server; tests and benchmarks start servers and gateways this way."""
from __future__ import annotations

import sys


def program(command: str) -> list[str]:
    return [sys.executable, "-m", "ctpipe.cli", command]
