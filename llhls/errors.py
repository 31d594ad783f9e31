"""The llhls exception tree.

::

    LLHLSError                      base of everything llhls raises on purpose
    ├── ConfigError(ValueError)     bad option or argument (CLI: one line, exit 2)
    ├── SourceError                 a source cannot be opened or read
    ├── EncodeError                 an encoder failed
    ├── BoxError(ValueError)        malformed or unsupported ISO-BMFF / CMAF data
    ├── PlaylistError(ValueError)   malformed playlist text or a broken spec rule;
    │                               carries the 1-based ``line`` where known
    ├── OriginError                 the origin cannot start (port in use, TLS files)
    └── PlayerError                 the player cannot go on (unreachable, TLS, not HLS)

Third-party exceptions are converted at the boundary with ``raise X from exc``.
"""

from __future__ import annotations

__all__ = [
    "LLHLSError",
    "ConfigError",
    "SourceError",
    "EncodeError",
    "BoxError",
    "PlaylistError",
    "OriginError",
    "PlayerError",
]


class LLHLSError(Exception):
    """Base class of every error llhls raises on purpose."""


class ConfigError(LLHLSError, ValueError):
    """An option, argument or configuration value is invalid."""


class SourceError(LLHLSError):
    """A media source cannot be opened or read."""


class EncodeError(LLHLSError):
    """An encoder rejected its input or failed."""


class BoxError(LLHLSError, ValueError):
    """Malformed or unsupported ISO-BMFF / CMAF data."""


class PlaylistError(LLHLSError, ValueError):
    """Malformed playlist text, or a playlist that breaks a spec rule."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class OriginError(LLHLSError):
    """The origin cannot start or serve (port in use, unreadable TLS files)."""


class PlayerError(LLHLSError):
    """The player cannot continue (host unreachable, TLS failure, not HLS)."""
