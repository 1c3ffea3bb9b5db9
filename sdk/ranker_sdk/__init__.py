"""ranker-sdk: rank search candidates on a CPU with a distilled cross-encoder package."""

from .errors import InputError, InternalError, PackageError, RankerError
from .ranker import Hit, Ranker

__version__ = "0.1.0"

__all__ = ["Ranker", "Hit", "RankerError", "PackageError", "InputError", "InternalError", "__version__"]
