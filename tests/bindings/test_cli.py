"""``ranker bindings build`` with bad input: one ``error:`` line naming it, nothing built."""

from __future__ import annotations

import pytest

from ..cli_helpers import error_line, run_main, run_subprocess

pytest.importorskip("cffi")  # without the `bindings` extra the command only says which extra to install


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, err = run_main(["bindings", "build", "--out", str(tmp_path / "afile")], capsys)
    error_line(rc, err, "afile", "is a file")


def test_a_missing_compiler_is_named_in_a_real_process(tmp_path):
    rc, err = run_subprocess(["bindings", "build", "--out", str(tmp_path / "lib"), "--cc", "no-such-cc"])
    assert rc == 1 and error_line(rc, err, "no-such-cc").startswith("error: ")
    assert not (tmp_path / "lib" / "libranker.so").exists()
