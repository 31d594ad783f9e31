"""The origin: pure request decisions, the in-memory store and HTTP adapters."""

from llhls.origin.core import Ready, Unclaimed, Wait, decide
from llhls.origin.messages import Request, Response
from llhls.origin.service import Origin
from llhls.origin.store import RenditionSpec, Store, StreamSpec

__all__ = [
    "Origin",
    "Ready",
    "RenditionSpec",
    "Request",
    "Response",
    "Store",
    "StreamSpec",
    "Unclaimed",
    "Wait",
    "decide",
]
