"""ctpipe.common.files: whole files, with the permissions a plain write would give."""
from __future__ import annotations

import os
import stat

from ctpipe.common.files import write_atomically


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_mode_of_a_plain_write_and_a_replaced_one_keeps_its_own(tmp_path):
    previous = os.umask(0o027)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        written = tmp_path / "report.html"
        write_atomically(str(written), "<html></html>")
        assert _mode(written) == _mode(plain) == 0o640

        os.chmod(written, 0o604)
        write_atomically(str(written), b"again")
        assert _mode(written) == 0o604 and written.read_bytes() == b"again"
    finally:
        os.umask(previous)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
