"""HLS playlists: a tag model, a renderer, a parser and the spec rules (all pure)."""

from llhls.playlist.model import (
    ByteRange,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    OpenSegment,
    Part,
    PreloadHint,
    Rendition,
    RenditionReport,
    Segment,
    ServerControl,
    Skip,
    Variant,
)
from llhls.playlist.parse import parse, parse_media, parse_multivariant
from llhls.playlist.render import render, render_media, render_multivariant
from llhls.playlist.rules import validate_media_playlist, validate_multivariant_playlist

__all__ = [
    "ByteRange",
    "Map",
    "MediaPlaylist",
    "MultivariantPlaylist",
    "OpenSegment",
    "Part",
    "PreloadHint",
    "Rendition",
    "RenditionReport",
    "Segment",
    "ServerControl",
    "Skip",
    "Variant",
    "parse",
    "parse_media",
    "parse_multivariant",
    "render",
    "render_media",
    "render_multivariant",
    "validate_media_playlist",
    "validate_multivariant_playlist",
]
