"""``ranker bindings build``: build the C ABI (``libranker.so`` + ``ranker.h``) into a folder.

Registered into the ``ranker`` command by :mod:`ranker_sdk.cli`. Importing this module needs
cffi (the ``bindings`` extra), so without it ``ranker bindings`` says which extra to install.
"""

from __future__ import annotations

import argparse

import cffi  # noqa: F401 - fail at registration, not at build time, without the `bindings` extra

from .build import build_info, build_library

__all__ = ["register"]


def _cmd_build(args: argparse.Namespace) -> int:
    lib = build_library(args.out, cc=args.cc)  # a BuildError is printed by the `ranker` main
    info = build_info()
    print(f"wrote {lib} and {lib.parent / 'ranker.h'}")
    print(f"    embeds Python {info['python_version'].split()[0]} from {info['prefix']}")
    print(f"    link with: cc app.c -I {lib.parent} -L {lib.parent} -lranker -Wl,-rpath,{lib.parent.resolve()}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bindings build`` to the ``ranker`` command's subparsers."""
    p = subparsers.add_parser("bindings", help="the C ABI: build libranker.so and ranker.h")
    sub = p.add_subparsers(dest="bindings_command", metavar="SUBCOMMAND", required=True)
    b = sub.add_parser(
        "build",
        help="build libranker.so and ranker.h for this Python environment",
        description="Build libranker.so (embedding this Python and environment) and copy ranker.h "
        "into --out. Rebuild it whenever the environment moves or its Python changes.",
    )
    b.add_argument("--out", required=True, help="folder to write libranker.so and ranker.h into")
    b.add_argument("--cc", default=None, help="C compiler (default: $CC or gcc)")
    b.set_defaults(func=_cmd_build)
