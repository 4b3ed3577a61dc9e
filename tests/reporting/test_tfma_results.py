"""Reading TFMA's result files without TensorFlow; the results of a real Evaluator are compared
with TFMA's own reading at the end of tests/test_e2e.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tfma_result_protos_load_without_tensorflow():
    """TFMA's package imports TensorFlow; its result protos alone do not need to."""
    probe = ("import sys; from reporting import tfma_results; "
             "print(tfma_results._protos().MetricsForSlice.DESCRIPTOR.full_name, "
             "sorted(m for m in ('tensorflow', 'tensorflow_model_analysis') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, cwd=REPO, check=True)
    assert done.stdout.split() == ["tensorflow_model_analysis.MetricsForSlice", "[]"]

