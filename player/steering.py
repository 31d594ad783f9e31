"""Steering: the latency controller, ABR and the startup plan of one player (pure).

:class:`Steering` is the glue between a player adapter and the control cores
(:class:`player.catchup.Controller`, :class:`player.abr.Abr`,
:func:`player.catchup.startup_plan`). It holds no clock and does no I/O: the
adapter (:class:`player.player.Player`) reports what happened, with ``now``,
and applies what :meth:`Steering.tick` returns::

    on_renditions(renditions, video)    the multivariant playlist is known
    on_handshake(rtt)                   the transport's handshake round trip
    on_download(now, kind, nbytes, s)   a media response (first to last byte)
    start_shift_us()                    the startup buffer (after the first media)
    on_part(now, before, latency, d)    a video part is about to enter the buffer
    tick(now, ...) -> Steer             every control tick (100 ms): rate, target,
                                        jump to live, rendition switch

The base target latency is the one given, or else the latency measured when
playback starts (what the playlist's hold-back gives on this path, less the
startup buffer), but at most the hold-back plus one part: the controller holds
the latency a prompt start gives, and returns to it after a slow start or a
stall.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from player.abr import Abr, AbrConfig
from player.actions import RenditionInfo, RequestKind
from player.buffer import PlayState
from player.catchup import CatchupConfig, Controller, Mode, Observation, StartupPlan, startup_plan

__all__ = ["MIN_STARTUP_BYTES", "Steer", "Steering"]

logger = logging.getLogger(__name__)

MIN_STARTUP_BYTES = 1000
"""Media bytes needed before the first downloads count as a throughput figure."""


@dataclass(frozen=True, slots=True)
class Steer:
    """What the player should do after a control tick."""

    rate: float
    """Playout rate."""
    target_s: float | None
    """The controller's current target latency (``None`` before it is known)."""
    mode: Mode
    """What the controller is doing."""
    jump: bool = False
    """Jump to live now (restart at the target latency at an independent part)."""
    switch_to: str | None = None
    """Switch the video to this rendition (at its next independent part)."""


class Steering:
    """Rate control, target latency, startup buffer and ABR for one player.

    ``target_s``: the base target latency (``None``: the latency at the start).
    ``catchup=False`` keeps the rate at 1 (the target is still tracked and
    reported); ``abr=False`` stays on the first rendition.
    """

    def __init__(
        self,
        *,
        target_s: float | None = None,
        catchup: bool = True,
        abr: bool = True,
        catchup_config: CatchupConfig | None = None,
        abr_config: AbrConfig | None = None,
    ) -> None:
        if target_s is not None and not target_s > 0:
            raise ValueError(f"target latency must be positive, got {target_s}")
        config = catchup_config or CatchupConfig()
        self.controller = Controller(config)
        """The latency controller."""
        self.catchup = catchup
        """Whether the rate is steered (else 1x)."""
        self.abr_enabled = abr
        """Whether renditions are switched."""
        self.abr_config = abr_config or AbrConfig()
        """The ABR rule's tuning."""
        self.abr: Abr | None = None
        """The ABR rule (once the renditions are known)."""
        self.plan: StartupPlan | None = None
        """The startup plan (after the first media download)."""
        self.rtt_s: float | None = None
        """Handshake round trip, when the transport measured one."""
        self._given_target = target_s
        self._target_known = target_s is not None
        self._plan_applied = False
        self._boot_bytes = 0
        self._boot_seconds = 0.0
        self._gate = "waiting"
        if target_s is not None:
            self.controller.set_target(target_s)

    # -- inputs ----------------------------------------------------------------------------

    def on_renditions(self, renditions: Sequence[RenditionInfo], video: str | None) -> None:
        """The renditions are known and the session plays ``video``."""
        if self.abr is not None or not any(r.type == "video" for r in renditions):
            return
        self.abr = Abr(renditions, self.abr_config)
        self.abr.follow(video)

    def on_handshake(self, rtt_s: float | None) -> None:
        """The transport's handshake round trip (the first one counts)."""
        if self.rtt_s is None and rtt_s is not None and rtt_s >= 0:
            self.rtt_s = rtt_s

    def on_timeout(
        self, kind: RequestKind, rendition: str | None, seconds: float, media_s: float
    ) -> None:
        """A media request for ``media_s`` seconds of ``rendition`` timed out after
        ``seconds`` (see :meth:`player.abr.Abr.on_timeout`); other renditions' and
        other kinds' timeouts say nothing about the rendition being fetched."""
        abr = self.abr
        if abr is not None and kind in ("part", "segment") and rendition == abr.current_id:
            abr.on_timeout(seconds, media_s)

    def on_download(self, now: float, kind: RequestKind, nbytes: int, seconds: float) -> None:
        """A response of ``kind`` with ``nbytes`` took ``seconds`` from first to last byte.

        Media downloads feed the throughput estimate. The first part or segment
        makes the startup plan, from the handshake round trip and the media
        downloaded so far (:func:`player.catchup.startup_plan`).
        """
        if kind not in ("part", "segment", "init"):
            return
        if self.abr is not None and kind != "init":
            self.abr.on_download(nbytes, max(seconds, 1e-6))
        if self.plan is not None:
            return
        self._boot_bytes += nbytes
        self._boot_seconds += max(0.0, seconds)
        if kind == "init":
            return
        tput = None
        if self._boot_bytes >= MIN_STARTUP_BYTES and self._boot_seconds > 0:
            tput = self._boot_bytes * 8 / self._boot_seconds
        bitrate = self.abr.bitrate_bps if self.abr is not None else None
        self.plan = startup_plan(self.rtt_s or 0.0, tput, bitrate)
        logger.info(
            "network %s (rtt %s, first downloads %s): startup buffer %.3f s",
            self.plan.grade,
            "?" if self.rtt_s is None else f"{self.rtt_s * 1000:.1f} ms",
            "?" if tput is None else f"{tput / 1e6:.1f} Mbit/s",
            self.plan.extra_s,
        )

    def start_shift_us(self) -> int:
        """How much earlier than the session's start point to begin: the startup buffer
        (0 until the plan is made)."""
        return 0 if self.plan is None else round(self.plan.extra_s * 1_000_000)

    def on_part(
        self, now: float, buffer_before_s: float, latency_s: float, duration_s: float
    ) -> None:
        """A video part of ``duration_s`` arrives with ``buffer_before_s`` buffered."""
        self.controller.on_part(now, buffer_before_s, latency_s, duration_s)

    def tick(
        self,
        now: float,
        *,
        latency_s: float | None,
        buffer_s: float,
        state: PlayState,
        stalls: int,
        part_s: float,
        target_duration_s: float,
        rendition: str | None,
        nominal_s: float | None = None,
        edge_age_s: float | None = None,
    ) -> Steer:
        """One control tick: what to do now.

        ``nominal_s``: the latency a start at the playlist's hold-back gives when the
        first media arrives at once (hold-back + one part). Without a given target,
        the base target is the latency at the start, but no more than this: a slow
        first fetch does not become a standing delay. ``edge_age_s``: how old the
        newest part of the playlist is (see :attr:`player.catchup.Observation.edge_age_s`).
        """
        if not self._target_known and latency_s is not None and state is PlayState.PLAYING:
            extra = self.plan.extra_s if self.plan is not None else 0.0
            base = latency_s - extra
            if nominal_s is not None:
                base = min(base, nominal_s)
            self.controller.set_target(max(0.05, base))
            self._target_known = True
        if self._target_known and self.plan is not None and not self._plan_applied:
            self.controller.start(self.plan)
            self._plan_applied = True
            logger.info(
                "target latency %.3f s (base %.3f s)",
                self.controller.target_s,
                self.controller.base_s,
            )
        abr = self.abr
        obs = Observation(
            # a jump is decided while playing or stalled, never while (re)buffering: a
            # player stalled far behind on a healthy origin jumps instead of waiting for
            # ever; during an outage of the origin its edge is old (``edge_age_s``) and
            # there is no live edge to jump to (:func:`player.catchup.edge_stale`)
            latency_s=latency_s if state in (PlayState.PLAYING, PlayState.STALLED) else None,
            buffer_s=max(0.0, buffer_s),
            state=state,
            stalls=stalls,
            part_s=part_s,
            target_duration_s=target_duration_s,
            throughput_bps=abr.throughput_bps if abr is not None else None,
            bitrate_bps=abr.bitrate_bps if abr is not None else None,
            edge_age_s=edge_age_s,
        )
        if not self._target_known:
            return Steer(1.0, None, "waiting")
        decision = self.controller.update(now, obs)
        gate = "" if decision.health is None else decision.health.reason
        if gate != self._gate:
            self._gate = gate
            logger.debug(
                "catch-up gate %s (mode %s, floor %s s)",
                gate or "open",
                decision.mode,
                None if decision.floor_s is None else round(decision.floor_s, 3),
            )
        switch_to = None
        if self.abr_enabled and abr is not None and state is not PlayState.BUFFERING:
            choice = abr.decide(now, buffer_s)
            if choice is not None and choice != rendition:
                switch_to = choice
        rate = decision.rate if self.catchup else 1.0
        jump = decision.jump and self.catchup
        return Steer(rate, decision.target_s, decision.mode, jump, switch_to)

    def on_switch_refused(self, rendition: str | None) -> None:
        """The session could not switch: the rule follows what is really fetched."""
        if self.abr is not None:
            self.abr.follow(rendition)
