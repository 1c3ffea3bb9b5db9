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
    import numpy as np
    from ranker_sdk import InputError, PackageError, Ranker, RankerError

    rankers: dict[int, Ranker] = {}
    ids = itertools.count(1)
    lock = threading.Lock()

    def fail(code: int, msg: str) -> int:
        lib._rk_set_error(msg.encode("utf-8", "replace")[:4000])
        return code

    def fail_from(exc: BaseException) -> int:
        if isinstance(exc, InputError):
            return fail(lib.RK_E_INPUT, str(exc))
        if isinstance(exc, PackageError):
            return fail(lib.RK_E_PACKAGE, str(exc))
        if isinstance(exc, RankerError):
            return fail(lib.RK_E_INTERNAL, str(exc))
        return fail(
            lib.RK_E_INTERNAL,
            f"internal error in libranker: {type(exc).__name__}: {exc}; please report it with this message",
        )

    def on_error(exc_type: type, exc: BaseException, tb: Any) -> None:
        # Only reached if the handlers below fail themselves; the C half still sees a code.
        try:
            fail(lib.RK_E_INTERNAL, f"internal error in libranker: {exc_type.__name__}: {exc}")
        except BaseException:  # noqa: BLE001 - nothing may escape into C
            pass

    def text(ptr: Any, what: str) -> str:
        raw = ffi.string(ptr)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw[:_MAX_TEXT_IN_MESSAGE]
            raise InputError(
                f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start}: "
                f"{raw[exc.start : exc.start + 4]!r}; starts {shown!r}); pass UTF-8 text"
            ) from None

    def texts(query_ptr: Any, docs_ptr: Any, n: int) -> tuple[str, list[str]]:
        return text(query_ptr, "query"), [text(docs_ptr[i], f"docs[{i}]") for i in range(n)]

    def ranker_of(rid: int) -> Ranker:
        ranker = rankers.get(rid)
        if ranker is None:
            raise _ArgumentError("the rk_ranker handle is closed; open one with rk_open()")
        return ranker

    def guarded(fn: Any) -> Any:
        def run(*args: Any) -> int:
            try:
                return fn(*args)
            except _ArgumentError as exc:
                return fail(lib.RK_E_ARGUMENT, str(exc))
            except BaseException as exc:  # noqa: BLE001 - this is the boundary to C
                return fail_from(exc)

        run.__name__ = fn.__name__
        return ffi.def_extern(name=fn.__name__, error=lib.RK_E_INTERNAL, onerror=on_error)(run)

    @guarded
    def _rk_py_open(path_ptr: Any, threads: int, out_id: Any) -> int:
        path = None if path_ptr == ffi.NULL else os.fsdecode(ffi.string(path_ptr))
        ranker = Ranker.load(path, threads=threads if threads > 0 else None)
        with lock:
            rid = next(ids)
            rankers[rid] = ranker
        out_id[0] = rid
        return lib.RK_OK

    @guarded
    def _rk_py_score(rid: int, query_ptr: Any, docs_ptr: Any, n: int, out_scores: Any) -> int:
        ranker = ranker_of(rid)
        query, docs = texts(query_ptr, docs_ptr, n)
        scores = np.ascontiguousarray(ranker.score(query, docs), dtype=np.float32)
        ffi.memmove(out_scores, scores, 4 * n)
        return lib.RK_OK

    @guarded
    def _rk_py_rank(
        rid: int, query_ptr: Any, docs_ptr: Any, n: int, top_k: int, out_idx: Any, out_scores: Any, out_count: Any
    ) -> int:
        ranker = ranker_of(rid)
        query, docs = texts(query_ptr, docs_ptr, n)
        hits = ranker.rank(query, docs, top_k=min(top_k, n))
        for i, hit in enumerate(hits):
            out_idx[i] = hit.index
            out_scores[i] = hit.score
        out_count[0] = len(hits)
        return lib.RK_OK

    @guarded
    def _rk_py_close(rid: int) -> int:
        with lock:
            ranker = rankers.pop(rid, None)
        if ranker is None:
            raise _ArgumentError("the rk_ranker handle was closed already")
        return lib.RK_OK


class _ArgumentError(Exception):
    """API misuse the C half cannot see (a closed handle): RK_E_ARGUMENT."""
