"""The C ABI (bindings/ranker.h, libranker.so): real C programs against the tiny package.

The library is built once per session (conftest.cabi_dir); every program runs as a
subprocess with an empty environment (as `env -i` would), so nothing here leans on the
test process's PYTHONPATH, PATH or LD_LIBRARY_PATH.
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RK_OK, RK_E_ARGUMENT, RK_E_PACKAGE, RK_E_INPUT, RK_E_INTERNAL = range(5)
TIMEOUT = 120


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env or {}, timeout=TIMEOUT)


def parse_ranking(stdout: str) -> list[tuple[int, int, float, str]]:
    rows = []
    for line in stdout.splitlines():
        rank, index, score, doc = line.split("\t", 3)  # any other line on stdout is a defect
        rows.append((int(rank), int(index), float(score), doc))
    return rows


def test_build_writes_library_and_the_header(cabi_dir):
    from ranker_sdk import __version__

    assert (cabi_dir / "ranker.h").read_bytes() == (ROOT / "bindings" / "ranker.h").read_bytes()
    lib = ctypes.CDLL(str(cabi_dir / "libranker.so"))  # these two never start Python
    lib.rk_version.restype = ctypes.c_char_p
    assert lib.rk_version().decode() == __version__
    assert lib.rk_abi_version() == 1


def test_header_compiles_as_strict_c_and_cpp(cabi_dir, tmp_path):
    src = tmp_path / "h.c"
    src.write_text('#include "ranker.h"\nint main(void) { return rk_abi_version() == RK_ABI_VERSION ? RK_OK : 1; }\n')
    c = subprocess.run(
        ["gcc", "-fsyntax-only", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", f"-I{cabi_dir}", str(src)],
        capture_output=True,
        text=True,
    )
    assert c.returncode == 0, c.stderr
    if shutil.which("g++"):
        cpp = subprocess.run(
            ["g++", "-fsyntax-only", "-Wall", "-Werror", "-x", "c++", f"-I{cabi_dir}", str(src)],
            capture_output=True,
            text=True,
        )
        assert cpp.returncode == 0, cpp.stderr


def test_rank_example_matches_the_python_sdk(rank_example, docs_file, tiny_package, tiny_ranker):
    query, docs, path = docs_file
    expected = tiny_ranker.score(query, docs)
    proc = run([rank_example, tiny_package, query, path])
    assert proc.returncode == 0, proc.stderr
    rows = parse_ranking(proc.stdout)
    assert [r[0] for r in rows] == list(range(1, len(docs) + 1))
    assert [r[1] for r in rows] == [h.index for h in tiny_ranker.rank(query, docs)]
    for _, index, score, doc in rows:
        assert doc == docs[index]
        assert abs(score - float(expected[index])) <= 1e-5
    assert len(set(round(r[2], 4) for r in rows)) > 1, "the tiny model should give spread-out scores"

    top = parse_ranking(run([rank_example, tiny_package, query, path, "5"]).stdout)
    assert [r[:2] for r in top] == [r[:2] for r in rows[:5]]


def test_misuse_returns_codes_and_messages(cabi_dir, tiny_package, tmp_path, compile_c, link_flags):
    from ranker_sdk.ranker import default_package_path

    prog = compile_c(HERE / "misuse.c", tmp_path / "misuse", cabi_dir, *link_flags(cabi_dir))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_package, corrupt)
    model = bytearray((corrupt / "model.onnx").read_bytes())
    model[len(model) // 2] ^= 0xFF
    (corrupt / "model.onnx").write_bytes(bytes(model))
    missing = tmp_path / "no-such-package"

    proc = run([prog, tiny_package, missing, corrupt])
    assert proc.returncode == 0, proc.stderr
    got = {}
    for line in proc.stdout.splitlines():
        name, code, msg = line.split("\t")
        got[name] = (int(code), msg)

    def check(name: str, code: int, *words: str) -> None:
        c, msg = got[name]
        assert c == code, f"{name}: {c} {msg!r}"
        if code == RK_OK:
            assert msg == "", f"{name}: rk_last_error() should be empty after success, got {msg!r}"
        for w in words:
            assert w in msg, f"{name}: {w!r} not in {msg!r}"

    assert got["version"][1] and got["abi"][0] == 0
    check("initial_error", RK_OK)
    check("open_null_out", RK_E_ARGUMENT, "out is NULL")
    check("open_missing", RK_E_PACKAGE, str(missing), "no such package")
    assert got["open_missing_sets_null"][0] == 0
    check("open_corrupt", RK_E_PACKAGE, "model.onnx", "sha256")
    if default_package_path() is None:
        check("open_default", RK_E_PACKAGE, "default package")
    else:
        check("open_default", RK_OK)
    check("open_negative_threads", RK_OK)
    check("open", RK_OK)
    check("score", RK_OK)
    check("score_null_handle", RK_E_ARGUMENT, "handle is NULL")
    check("score_null_query", RK_E_ARGUMENT, "query is NULL")
    check("score_null_docs", RK_E_ARGUMENT, "docs is NULL")
    check("score_null_doc", RK_E_ARGUMENT, "docs[1] is NULL")
    check("score_zero_docs", RK_E_ARGUMENT, "n_docs is 0")
    check("score_null_out", RK_E_ARGUMENT, "out_scores is NULL")
    check("score_invalid_utf8_query", RK_E_INPUT, "query is not valid UTF-8")
    check("score_invalid_utf8_doc", RK_E_INPUT, "docs[1] is not valid UTF-8")
    check("score_empty_query", RK_E_INPUT, "query is empty")
    check("score_blank_query", RK_E_INPUT, "query is empty")
    check("score_after_failure", RK_OK)
    check("rank_zero_top_k", RK_E_ARGUMENT, "top_k is 0")
    assert got["rank_zero_top_k_count"][0] == 0, "a failed rk_rank sets *out_count to 0"
    check("rank_null_count", RK_E_ARGUMENT, "out_count is NULL")
    check("rank_null_indices", RK_E_ARGUMENT, "out_indices")
    check("rank_empty_query", RK_E_INPUT, "query is empty")
    check("rank_top_k_above_n", RK_OK)
    assert got["rank_top_k_above_n_count"][0] == 3
    check("close_null", RK_OK)
    check("close", RK_OK)


def test_four_threads_on_one_handle_get_the_single_threaded_scores(
    cabi_dir, docs_file, tiny_package, tiny_ranker, tmp_path, compile_c
):
    query, docs, path = docs_file
    # loaded with dlopen(RTLD_LOCAL), as plugin hosts do: not linked with -lranker
    prog = compile_c(HERE / "threads.c", tmp_path / "threads", cabi_dir, "-pthread", "-ldl", "-lm")
    proc = run([prog, cabi_dir / "libranker.so", tiny_package, query, path, 4, 6])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    single = [float(x) for x in lines["scores"].split()]
    assert max(abs(a - float(b)) for a, b in zip(single, tiny_ranker.score(query, docs), strict=True)) <= 1e-5
    assert float(lines["max_diff"]) <= 1e-6
    assert lines["failures"] == "0"


def test_ignores_the_hosts_python_environment(rank_example, docs_file, tiny_package, tmp_path):
    """PYTHONHOME, PYTHONPATH, a python3 on PATH, a libpython on LD_LIBRARY_PATH: none is used."""
    query, _, path = docs_file
    clean = run([rank_example, tiny_package, query, path])
    assert clean.returncode == 0, clean.stderr

    bin_dir, lib_dir = tmp_path / "bin", tmp_path / "lib"
    bin_dir.mkdir()
    lib_dir.mkdir()
    fake_python = bin_dir / "python3"
    fake_python.write_text("#!/bin/sh\necho 'the wrong python3 ran' >&2\nexit 3\n")
    fake_python.chmod(0o755)
    stub = tmp_path / "stub.c"
    stub.write_text("int not_python;\n")
    soname = sysconfig.get_config_var("INSTSONAME")  # libpython3.X.so.1.0, as libranker.so needs it
    subprocess.run(
        ["gcc", "-shared", "-fPIC", str(stub), f"-Wl,-soname,{soname}", "-o", str(lib_dir / soname)], check=True
    )
    hostile = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PYTHONHOME": str(tmp_path / "nohome"),
        "PYTHONPATH": str(tmp_path / "nopath"),
        "LD_LIBRARY_PATH": str(lib_dir),
        "PYTHONSAFEPATH": "0",
        "PYTHONNOUSERSITE": "0",
        "LC_ALL": "C",
    }
    proc = run([rank_example, tiny_package, query, path], env=hostile)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == clean.stdout


def _other_libpythons() -> list[str]:
    from ranker_bindings.build import build_info

    ours = build_info()["libpython"]
    dirs = ["/usr/lib", "/usr/lib64", "/usr/local/lib", f"/usr/lib/{sysconfig.get_config_var('MULTIARCH') or ''}"]
    found = [p for d in dirs for p in glob.glob(os.path.join(d, "libpython3*.so.1.0"))]
    return sorted({os.path.realpath(p) for p in found} - {ours})


@pytest.mark.skipif(not _other_libpythons(), reason="no second libpython on this machine to mismatch with")
def test_refuses_a_different_libpython(rank_example, docs_file, tiny_package):
    query, _, path = docs_file
    proc = run([rank_example, tiny_package, query, path], env={"LD_PRELOAD": _other_libpythons()[0]})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"error {RK_E_INTERNAL}: libranker could not start Python: the library was built" in proc.stderr
    assert "ranker bindings build" in proc.stderr


@pytest.mark.slow
def test_refuses_an_environment_that_is_gone(docs_file, tiny_package, tmp_path, compile_c, link_flags):
    """A library built in a venv whose packages or whole self are later removed says so and runs nothing."""
    import site

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=TIMEOUT)
    vpy = venv / "bin" / "python"
    site_packages = subprocess.run(
        [vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # reach this environment's cffi and ranker packages (editable finders included)
    ours = [p for p in site.getsitepackages() if os.path.isdir(p)]
    Path(site_packages, "parent_env.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    lib_dir = tmp_path / "lib"
    subprocess.run(
        [vpy, "-c", f"from ranker_bindings import build_library; build_library({str(lib_dir)!r})"],
        check=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
    )
    prog = compile_c(ROOT / "examples" / "c" / "rank.c", tmp_path / "rank", lib_dir, *link_flags(lib_dir))
    query, _, path = docs_file
    assert run([prog, tiny_package, query, path]).returncode == 0  # works while the venv exists

    # The environment loses its packages: cffi's own start-up fails (no _cffi_backend), which
    # cffi alone would report as a 0 (RK_OK) return; the library must say RK_E_INTERNAL.
    Path(site_packages, "parent_env.pth").unlink()
    proc = run([prog, tiny_package, query, path])
    assert proc.returncode == 1
    assert f"error {RK_E_INTERNAL}: libranker could not start Python: the embedded start-up code raised" in proc.stderr
    assert "_cffi_backend" in proc.stderr  # cffi's traceback, on stderr
    assert proc.stdout == ""

    shutil.rmtree(venv)
    proc = run([prog, tiny_package, query, path])
    assert proc.returncode == 1
    assert (
        f"error {RK_E_INTERNAL}: libranker could not start Python: the environment it was built from is gone"
        in proc.stderr
    )
    assert proc.stdout == ""
