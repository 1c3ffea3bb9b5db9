"""The Python half of ``libranker.so``: runs inside the interpreter the library embeds.

:func:`ranker_bindings.build.build_library` compiles this file's source into the library as
cffi's *embedding init code* (followed by a call to :func:`_install`), so a built library
always carries the Python half it was built with. Importing this module does nothing; it is a
module only so that it can be read, linted and documented like the rest.

At start-up :func:`_install`:

1. redirects ``sys.stdout`` to ``sys.stderr`` when the library owns the interpreter (the host's
   stdout belongs to the host: a stray ``print`` must not corrupt its protocol);
2. checks that the running interpreter and environment are the ones recorded at build time
   (``sys.hexversion``, ``sys.prefix``, site-packages on ``sys.path``);
3. imports :mod:`ranker_sdk` (so a broken install fails at start-up, not at the first score);
4. defines the four ``extern "Python"`` functions the C half calls (``_rk_py_open``,
   ``_rk_py_score``, ``_rk_py_rank``, ``_rk_py_close``) and reports success through
   ``_rk_started(1, "")`` (or the failure through ``_rk_started(0, message)``).

Handles: a :class:`~ranker_sdk.Ranker` lives in a dict keyed by an integer id; the C handle
holds the id. Rankers are immutable and thread-safe, so concurrent calls on one handle need
no lock of their own (cffi takes the GIL per call; onnxruntime releases it while it runs).

Every function returns an ``RK_*`` code and never lets an exception escape: errors become a
code plus a message in the calling thread's ``rk_last_error()``. ``def_extern(error=...)``
and ``onerror`` are the last line of defence should the error handling itself fail.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from typing import Any

_MAX_TEXT_IN_MESSAGE = 60


def _install() -> None:
    from _libranker import ffi, lib  # the cffi module of the library itself

    try:
        info = json.loads(ffi.string(lib._rk_build_info()).decode("utf-8"))
        if lib._rk_owns_python():
            sys.stdout = sys.stderr
            _check_environment(info)
        site_packages = info["site_packages"]
        if site_packages not in sys.path:  # a host that runs its own Python: add ours
            import site

            site.addsitedir(site_packages)
        _define_functions(ffi, lib)
    except BaseException as exc:  # noqa: BLE001 - reported to C, which turns it into RK_E_INTERNAL
        msg = f"{type(exc).__name__}: {exc}"
        lib._rk_started(0, msg.encode("utf-8", "replace")[:1500])
        return
    lib._rk_started(1, b"")


def _check_environment(info: dict[str, Any]) -> None:
    if sys.hexversion != info["hexversion"]:
        raise RuntimeError(
            f"running Python {sys.version.split()[0]} (hexversion {sys.hexversion:#x}) but the "
            f"library was built for {info['python_version'].split()[0]} ({info['hexversion']:#x}); "
            "rebuild it with `ranker bindings build`"
        )
    if os.path.realpath(sys.prefix) != os.path.realpath(info["prefix"]):
        raise RuntimeError(
            f"Python started with sys.prefix {sys.prefix} but the library was built in "
            f"{info['prefix']}; rebuild it with `ranker bindings build` in the environment to use"
        )


def _define_functions(ffi: Any, lib: Any) -> None:
    """Define the four ``extern "Python"`` functions of the C half (see :class:`_Bridge`)."""
    import numpy as np
    from ranker_sdk import Ranker

    bridge = _Bridge(ffi, lib)

    @bridge.extern
    def _rk_py_open(path_ptr: Any, threads: int, out_id: Any) -> int:
        path = None if path_ptr == ffi.NULL else os.fsdecode(ffi.string(path_ptr))
        out_id[0] = bridge.add(Ranker.load(path, threads=threads if threads > 0 else None))
        return lib.RK_OK

    @bridge.extern
    def _rk_py_score(rid: int, query_ptr: Any, docs_ptr: Any, n: int, out_scores: Any) -> int:
        ranker = bridge.ranker_of(rid)
        query, docs = bridge.texts(query_ptr, docs_ptr, n)
        scores = np.ascontiguousarray(ranker.score(query, docs), dtype=np.float32)
        ffi.memmove(out_scores, scores, 4 * n)
        return lib.RK_OK

    @bridge.extern
    def _rk_py_rank(
        rid: int, query_ptr: Any, docs_ptr: Any, n: int, top_k: int, out_idx: Any, out_scores: Any, out_count: Any
    ) -> int:
        ranker = bridge.ranker_of(rid)
        query, docs = bridge.texts(query_ptr, docs_ptr, n)
        hits = ranker.rank(query, docs, top_k=min(top_k, n))
        for i, hit in enumerate(hits):
            out_idx[i] = hit.index
            out_scores[i] = hit.score
        out_count[0] = len(hits)
        return lib.RK_OK

    @bridge.extern
    def _rk_py_close(rid: int) -> int:
        bridge.remove(rid)
        return lib.RK_OK


class _Bridge:
    """What the extern functions share: the open Rankers by id, and turning errors into codes."""

    def __init__(self, ffi: Any, lib: Any) -> None:
        self.ffi, self.lib = ffi, lib
        self.rankers: dict[int, Any] = {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()

    def extern(self, fn: Any) -> Any:
        """Register ``fn`` as the ``extern "Python"`` function of its name; no exception escapes it."""

        def run(*args: Any) -> int:
            try:
                return fn(*args)
            except _ArgumentError as exc:
                return self.fail(self.lib.RK_E_ARGUMENT, str(exc))
            except BaseException as exc:  # noqa: BLE001 - this is the boundary to C
                return self.fail_from(exc)

        run.__name__ = fn.__name__
        return self.ffi.def_extern(name=fn.__name__, error=self.lib.RK_E_INTERNAL, onerror=self.on_error)(run)

    def fail(self, code: int, msg: str) -> int:
        """Set the calling thread's ``rk_last_error()`` message; return ``code``."""
        self.lib._rk_set_error(msg.encode("utf-8", "replace")[:4000])
        return code

    def fail_from(self, exc: BaseException) -> int:
        """The ``RK_*`` code of ``exc``: whose fault it was, as its :class:`RankerError` class says."""
        from ranker_sdk import InputError, PackageError, RankerError

        lib = self.lib
        if isinstance(exc, InputError):
            return self.fail(lib.RK_E_INPUT, str(exc))
        if isinstance(exc, PackageError):
            return self.fail(lib.RK_E_PACKAGE, str(exc))
        if isinstance(exc, RankerError):
            return self.fail(lib.RK_E_INTERNAL, str(exc))
        return self.fail(
            lib.RK_E_INTERNAL,
            f"internal error in libranker: {type(exc).__name__}: {exc}; please report it with this message",
        )

    def on_error(self, exc_type: type, exc: BaseException, tb: Any) -> None:
        # Only reached if the handlers of extern() fail themselves; the C half still sees a code.
        try:
            self.fail(self.lib.RK_E_INTERNAL, f"internal error in libranker: {exc_type.__name__}: {exc}")
        except BaseException:  # noqa: BLE001 - nothing may escape into C
            pass

    def text(self, ptr: Any, what: str) -> str:
        raw = self.ffi.string(ptr)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            from ranker_sdk import InputError

            shown = raw[:_MAX_TEXT_IN_MESSAGE]
            raise InputError(
                f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start}: "
                f"{raw[exc.start : exc.start + 4]!r}; starts {shown!r}); pass UTF-8 text"
            ) from None

    def texts(self, query_ptr: Any, docs_ptr: Any, n: int) -> tuple[str, list[str]]:
        return self.text(query_ptr, "query"), [self.text(docs_ptr[i], f"docs[{i}]") for i in range(n)]

    def add(self, ranker: Any) -> int:
        """Keep ``ranker``; return the id its C handle holds."""
        with self.lock:
            rid = next(self.ids)
            self.rankers[rid] = ranker
        return rid

    def ranker_of(self, rid: int) -> Any:
        ranker = self.rankers.get(rid)
        if ranker is None:
            raise _ArgumentError("the rk_ranker handle is closed; open one with rk_open()")
        return ranker

    def remove(self, rid: int) -> None:
        with self.lock:
            ranker = self.rankers.pop(rid, None)
        if ranker is None:
            raise _ArgumentError("the rk_ranker handle was closed already")


class _ArgumentError(Exception):
    """API misuse the C half cannot see (a closed handle): RK_E_ARGUMENT."""
