"""ranker_quantize: a trained cross-encoder checkpoint -> a verified INT8 ONNX package.

``build_package`` runs export -> optimize -> quantize -> verify -> package; each step is a small
module (:mod:`.export`, :mod:`.optimize`, :mod:`.quantize`, :mod:`.verify`, :mod:`.package`)
that can be used alone. ``ranker package`` (:mod:`.cli`) is the command-line driver.

Importing this package imports no torch: the steps import it when they run.
"""

from .errors import ExportError, FidelityError
from .pipeline import PackageOptions, PackageResult, build_package
from .quantize import QuantizeOptions
from .verify import VerifyOptions

__all__ = [
    "build_package",
    "PackageOptions",
    "PackageResult",
    "QuantizeOptions",
    "VerifyOptions",
    "ExportError",
    "FidelityError",
]
