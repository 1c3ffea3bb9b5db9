"""Driving the ``ranker`` command with bad input: in this process, or as a real subprocess.

A user's mistake must end as an ``error: ...`` line naming the bad thing and a non-zero status,
never a traceback. In this process a traceback would be an exception escaping ``main`` (the
test fails with it); in a subprocess it is the text ``Traceback`` on stderr.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence


def run_main(args: Sequence[str], capsys) -> tuple[int, str]:
    """``ranker_sdk.cli.main(args)`` in this process: (exit status, stderr).

    argparse's own usage errors exit through ``SystemExit``; that is a status like any other.
    """
    from ranker_sdk.cli import main

    capsys.readouterr()  # drop what earlier steps printed
    try:
        rc = main(list(args))
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


def run_subprocess(args: Sequence[str], **kw) -> tuple[int, str]:
    """``python -m ranker_sdk ARGS`` (PYTHONPATH inherited): (exit status, stderr)."""
    r = subprocess.run(
        [sys.executable, "-m", "ranker_sdk", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        **kw,
    )
    return r.returncode, r.stderr


def error_line(rc: int, err: str, *names: str) -> str:
    """The ``error:`` line that ends ``err``, checked: non-zero ``rc``, no traceback, each of ``names`` in it.

    Log lines (the training stages log to stderr) may come before it; argparse's usage errors
    read ``ranker eval: error: argument --k: ...``.
    """
    assert rc not in (0, None), f"exit status {rc}\n{err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and "error: " in lines[-1], err
    for name in names:
        assert name in lines[-1], f"{name!r} not in the error line\n{err}"
    return lines[-1]
