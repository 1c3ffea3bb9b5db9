"""Building ``libranker.so``: the C ABI of ``ranker.h``, with cffi in embedding mode.

:func:`build_library` writes ``libranker.so`` and ``ranker.h`` into a folder. The library is
three layers, all in one shared object:

- ``libranker.c``: the functions of ``ranker.h`` in C. They check arguments, start the embedded
  interpreter on first use, and keep the per-thread error message.
- cffi's generated module code, which runs the Python half and hands calls across.
- ``_embedded.py``: the Python half, compiled in as cffi's embedding init code; it keeps
  :class:`~ranker_sdk.Ranker` objects by id and turns exceptions into ``RK_*`` codes.

The interpreter is fixed at build time. The library records which Python built it (version
string, ``sys.hexversion``, the real path of ``libpython``), its standard library and the
environment's ``site-packages``, and links ``libpython`` with an ``RPATH`` (not ``RUNPATH``) to
its own folder so ``LD_LIBRARY_PATH`` cannot swap it. At start-up the library checks all of
it and refuses to run (``RK_E_INTERNAL`` with the reason) if anything differs; it never reads
``PYTHONHOME``/``PYTHONPATH`` and never looks for ``python3`` on ``PATH``. So: build it with
the Python of the environment it should run in, and rebuild it when that environment moves.

CPython must be built with ``--enable-shared`` (``Py_ENABLE_SHARED``): embedding needs
``libpythonX.Y.so``. A static interpreter (``libpythonX.Y.a`` only) is refused with a message:
linking the static library into ``libranker.so`` would leave the C extension modules that
Python loads (numpy, onnxruntime) without the interpreter's symbols whenever a host loads the
library with ``dlopen(RTLD_LOCAL)``. With pyenv: ``PYTHON_CONFIGURE_OPTS=--enable-shared
pyenv install 3.11``; distribution Pythons (Debian, Ubuntu, Fedora) and conda ship the shared
library.

Example:
    >>> from ranker_bindings import build_library
    >>> lib = build_library("build/cabi")            # doctest: +SKIP
    >>> lib.name
    'libranker.so'
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from ranker_sdk import RankerError
from ranker_sdk import __version__ as sdk_version

__all__ = ["BuildError", "build_library", "build_info", "HEADER"]

_HERE = Path(__file__).resolve().parent
HEADER = _HERE / "ranker.h"
"""The contract: ``bindings/ranker.h`` links here; the build copies it next to the library."""
_C_SOURCE = _HERE / "libranker.c"
_PY_SOURCE = _HERE / "_embedded.py"
_MODULE = "_libranker"  # the cffi module's name inside the embedded interpreter

# What the Python half sees of the C half. RK_* values come from ranker.h (`...` = ask the C
# compiler), so the header stays the one source of truth for the codes.
_CDEF = """
#define RK_OK ...
#define RK_E_ARGUMENT ...
#define RK_E_PACKAGE ...
#define RK_E_INPUT ...
#define RK_E_INTERNAL ...
extern "Python" int _rk_py_open(const char *, int, long long *);
extern "Python" int _rk_py_score(long long, const char *, const char *const *, size_t, float *);
extern "Python" int _rk_py_rank(long long, const char *, const char *const *, size_t, size_t,
                                size_t *, float *, size_t *);
extern "Python" int _rk_py_close(long long);
void _rk_set_error(const char *);
void _rk_started(int, const char *);
int _rk_owns_python(void);
const char *_rk_build_info(void);
"""


class BuildError(RankerError):
    """The library cannot be built here: no C compiler, a static Python, a failed compile."""


def build_info() -> dict:
    """What the library records about the Python building it (and checks when it starts).

    Raises:
        BuildError: this interpreter has no shared ``libpython`` (see the module docstring).
    """
    cfg = sysconfig.get_config_var
    libdir = cfg("LIBDIR")
    soname = cfg("INSTSONAME")
    if not cfg("Py_ENABLE_SHARED") or not libdir or not soname or not (Path(libdir) / soname).is_file():
        raise BuildError(
            f"{sys.executable} (Python {sys.version.split()[0]}) has no shared libpython "
            f"(Py_ENABLE_SHARED={cfg('Py_ENABLE_SHARED')}, looked for {libdir}/{soname}); the C ABI "
            "embeds Python and needs one. Use a Python built with --enable-shared (pyenv: "
            "PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install ...; distribution and conda "
            "Pythons have it) and run `ranker bindings build` from an environment made with it"
        )
    stdlib = sysconfig.get_paths()["stdlib"]
    zipped = os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}{sys.version_info[1]}.zip")
    dynload = cfg("DESTSHARED") or os.path.join(stdlib, "lib-dynload")
    return {
        "version": sdk_version,
        "python_version": sys.version,
        "hexversion": sys.hexversion,
        # The venv's python, not its resolved target: sys.prefix follows from its pyvenv.cfg.
        "executable": os.path.abspath(sys.executable),
        "prefix": sys.prefix,
        "exec_prefix": sys.exec_prefix,
        "base_prefix": sys.base_prefix,
        "base_exec_prefix": sys.base_exec_prefix,
        "libdir": str(Path(libdir).resolve()),
        "libpython": str((Path(libdir) / soname).resolve()),
        "include": sysconfig.get_paths()["include"],
        "stdlib": stdlib,
        "search_paths": [p for p in (zipped, stdlib, dynload) if os.path.exists(p)],
        "site_packages": sysconfig.get_paths()["purelib"],
    }


def _c_string(s: str) -> str:
    """``s`` as a C string literal (UTF-8 bytes, non-printable and non-ASCII ones in octal)."""
    out = []
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= b < 127 and ch != "?":  # '?' in octal: no trigraph surprises
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _build_macros(info: dict) -> str:
    lines = ["/* Recorded by ranker_bindings.build at build time: the Python this library embeds. */"]
    for name, key in [
        ("VERSION", "version"),
        ("PY_VERSION", "python_version"),
        ("EXECUTABLE", "executable"),
        ("PREFIX", "prefix"),
        ("EXEC_PREFIX", "exec_prefix"),
        ("BASE_PREFIX", "base_prefix"),
        ("BASE_EXEC_PREFIX", "base_exec_prefix"),
        ("LIBPYTHON", "libpython"),
        ("STDLIB", "stdlib"),
        ("SITE_PACKAGES", "site_packages"),
    ]:
        lines.append(f"#define RK__BUILD_{name} {_c_string(info[key])}")
    lines.append("#define RK__BUILD_SEARCH_PATHS " + ", ".join(_c_string(p) for p in info["search_paths"]))
    lines.append(f"#define RK__BUILD_INFO_JSON {_c_string(json.dumps(info))}")
    return "\n".join(lines) + "\n"


def _init_code() -> str:
    # exec with a real file name, so a start-up traceback points at _embedded.py.
    source = _PY_SOURCE.read_text(encoding="utf-8")
    return (
        f"_g = {{'__name__': 'ranker_bindings._embedded'}}\n"
        f"exec(compile({source!r}, {str(_PY_SOURCE)!r}, 'exec'), _g)\n"
        "_g['_install']()\n"
    )


def build_library(out_dir: str | os.PathLike[str], *, cc: str | None = None) -> Path:
    """Build ``libranker.so`` for this Python and environment; write it and ``ranker.h`` to ``out_dir``.

    Args:
        out_dir: the folder to write to (created if missing). An existing ``libranker.so``
            there is replaced atomically, so processes that have it loaded keep working.
        cc: the C compiler; default ``$CC`` or ``gcc``.

    Returns:
        The path of ``libranker.so``.

    Raises:
        BuildError: no shared libpython, no compiler, or the compile failed (with its output).
    """
    import cffi  # the `bindings` extra

    if not sys.platform.startswith("linux"):
        raise BuildError(f"building libranker.so is supported on Linux only, not {sys.platform}")
    out = Path(out_dir)  # the arguments first, then this Python
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out} is a file; pass a folder to write libranker.so and ranker.h into")
    cc = cc or os.environ.get("CC") or "gcc"
    if shutil.which(cc) is None:
        raise BuildError(f"no C compiler {cc!r} on PATH; install gcc (or pass cc=/ --cc)")
    info = build_info()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HEADER, out / "ranker.h")

    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    ffi.embedding_init_code(_init_code())
    ffi.set_source(_MODULE, _build_macros(info) + _C_SOURCE.read_text(encoding="utf-8"))
    target = out / "libranker.so"
    with tempfile.TemporaryDirectory(prefix="libranker-build-") as tmp:
        c_file = Path(tmp) / f"{_MODULE}.c"
        with contextlib.redirect_stdout(io.StringIO()):  # cffi prints 'generating ...'
            ffi.emit_c_code(str(c_file))
        tmp_target = Path(tmp) / "libranker.so"
        cmd = _compile_command(cc, c_file, tmp_target, out, info)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or proc.stderr.strip():
            raise BuildError(
                f"compiling libranker.so failed (exit {proc.returncode}):\n{' '.join(cmd)}\n{proc.stderr[-4000:]}"
            )
        staged = out / ".libranker.so.tmp"  # beside the target: os.replace needs one filesystem
        shutil.copyfile(tmp_target, staged)
        os.chmod(staged, 0o755)
        os.replace(staged, target)
    return target


def _compile_command(cc: str, c_file: Path, target: Path, include: Path, info: dict) -> list[str]:
    """The compiler's command line: ``c_file`` (which includes ``ranker.h`` from ``include``) into
    one shared object at ``target`` that links this Python's ``libpython``."""
    return [
        cc,
        "-shared",
        "-fPIC",
        "-O2",
        "-pthread",
        "-fvisibility=hidden",
        "-Wall",
        "-Wno-unused-function",
        "-Wno-unused-variable",
        f"-I{include}",
        f"-I{info['include']}",
        str(c_file),
        info["libpython"],
        "-ldl",
        # RPATH, not RUNPATH: searched before LD_LIBRARY_PATH, so the host's loader path
        # cannot substitute another libpython.
        f"-Wl,-rpath,{info['libdir']}",
        "-Wl,--disable-new-dtags",
        "-Wl,-soname,libranker.so",
        "-Wl,--no-undefined",
        "-o",
        str(target),
    ]
