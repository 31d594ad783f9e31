"""llhls: CMAF / Low-Latency HLS packager, origin, player and latency lab."""

from llhls.errors import LLHLSError

__all__ = ["LLHLSError", "__version__"]

__version__ = "0.1.0"
