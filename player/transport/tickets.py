"""On-disk cache of TLS 1.3 session tickets, so the next run resumes with 0-RTT.

One JSON file per origin (``<server_name>_<port>.json``) under
``$XDG_CACHE_HOME/llhls/tickets`` (``~/.cache/llhls/tickets`` without it),
written atomically with mode 0600 (a ticket carries a resumption secret).
JSON rather than pickle: a cache file is data, never code.

Tickets are single use: :meth:`TicketCache.take` removes the file it reads,
so two players never present the same ticket (the second would silently fall
back to a full handshake).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from aioquic.tls import CipherSuite, SessionTicket

__all__ = ["TicketCache", "default_ticket_dir", "ticket_from_json", "ticket_to_json"]

log = logging.getLogger(__name__)


def default_ticket_dir() -> Path:
    """``$XDG_CACHE_HOME/llhls/tickets``, or ``~/.cache/llhls/tickets`` without it."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "llhls" / "tickets"


def ticket_to_json(ticket: SessionTicket) -> dict[str, Any]:
    """A JSON-able dict holding every field of ``ticket``."""
    return {
        "age_add": ticket.age_add,
        "cipher_suite": int(ticket.cipher_suite),
        "not_valid_after": ticket.not_valid_after.isoformat(),
        "not_valid_before": ticket.not_valid_before.isoformat(),
        "resumption_secret": ticket.resumption_secret.hex(),
        "server_name": ticket.server_name,
        "ticket": ticket.ticket.hex(),
        "max_early_data_size": ticket.max_early_data_size,
        "other_extensions": [[kind, data.hex()] for kind, data in ticket.other_extensions],
    }


def ticket_from_json(obj: dict[str, Any]) -> SessionTicket:
    """The ticket :func:`ticket_to_json` described; ValueError/KeyError/TypeError if malformed."""
    early = obj["max_early_data_size"]
    return SessionTicket(
        age_add=int(obj["age_add"]),
        cipher_suite=CipherSuite(int(obj["cipher_suite"])),
        not_valid_after=dt.datetime.fromisoformat(str(obj["not_valid_after"])),
        not_valid_before=dt.datetime.fromisoformat(str(obj["not_valid_before"])),
        resumption_secret=bytes.fromhex(str(obj["resumption_secret"])),
        server_name=str(obj["server_name"]),
        ticket=bytes.fromhex(str(obj["ticket"])),
        max_early_data_size=None if early is None else int(early),
        other_extensions=[(int(k), bytes.fromhex(str(v))) for k, v in obj["other_extensions"]],
    )


class TicketCache:
    """Session tickets on disk, one per ``(server_name, port)``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = default_ticket_dir() if directory is None else directory
        """Where the ticket files live (made on first save)."""

    def path(self, server_name: str, port: int) -> Path:
        """The file holding the ticket for this origin."""
        safe = re.sub(r"[^A-Za-z0-9.\-]", "_", server_name)[:200]
        return self.directory / f"{safe}_{port}.json"

    def take(self, server_name: str, port: int) -> SessionTicket | None:
        """The cached ticket for this origin, removed from disk; None if absent,
        unreadable, expired or for another name."""
        path = self.path(server_name, port)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the session ticket %s: %s", path, exc)
            return None
        with contextlib.suppress(OSError):
            path.unlink()
        try:
            ticket = ticket_from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the malformed session ticket %s: %s", path, exc)
            return None
        if ticket.server_name != server_name or not ticket.is_valid:
            log.debug("ignoring the stale session ticket %s", path)
            return None
        return ticket

    def save(self, server_name: str, port: int, ticket: SessionTicket) -> None:
        """Store ``ticket`` for this origin (atomic replace, mode 0600); failures are logged."""
        path = self.path(server_name, port)
        data = json.dumps(ticket_to_json(ticket)).encode("utf-8")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("cannot save the session ticket to %s: %s", path, exc)
            return
        log.debug("saved a session ticket for %s:%d", server_name, port)
