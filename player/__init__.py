"""The llhls player: an LL-HLS client over HTTP/3, HTTP/2 or HTTP/1.1 with PyAV decoding.

:class:`Player` is the asyncio entry point::

    summary = await Player(url, protocol="h3", duration=30, cafile=cert).run()

It wires the sans-I/O cores — :class:`Session` (LL-HLS requests),
:class:`PlayoutBuffer` (playout clock), :class:`MetricsCollector` — to a
transport (:mod:`player.transport`) and a :class:`TrackDecoder` per track.
The summary holds the keys of :data:`SUMMARY_KEYS`.
"""

from __future__ import annotations

from llhls.errors import PlayerError
from player.actions import RenditionInfo, SessionConfig
from player.buffer import BufferConfig, PlayoutBuffer, PlayState
from player.decode import DecodedFrame, TrackDecoder
from player.metrics import SAMPLE_KEYS, SUMMARY_KEYS, LatencySource, MetricsCollector
from player.player import PROTOCOLS, Player, PlayerStatus, Protocol
from player.session import Session
from player.transport import TransportError

__all__ = [
    "Player",
    "PlayerStatus",
    "Protocol",
    "PROTOCOLS",
    "PlayerError",
    "TransportError",
    "Session",
    "SessionConfig",
    "RenditionInfo",
    "PlayoutBuffer",
    "BufferConfig",
    "PlayState",
    "MetricsCollector",
    "LatencySource",
    "SUMMARY_KEYS",
    "SAMPLE_KEYS",
    "TrackDecoder",
    "DecodedFrame",
]
