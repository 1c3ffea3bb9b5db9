"""ranker-sdk's C ABI: build ``libranker.so`` and ``ranker.h`` (cffi embedding).

``ranker bindings build --out DIR`` or :func:`build_library`; the contract is ``ranker.h``.
"""

from .build import HEADER, BuildError, build_library

__all__ = ["build_library", "BuildError", "HEADER"]
