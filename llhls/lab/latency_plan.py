"""What `llhls bench latency` runs: streams, delivery protocols, network profiles (pure).

A *scenario* is one stream kind, one network profile, one delivery protocol
and one player (ours or hls.js). The full plan is the product

* streams: classic HLS with 6 s segments, classic HLS with 2 s segments,
  LL-HLS (0.2 s parts, 2 s segments), all from the same test source;
* protocols: HTTP/1.1 without connection reuse, HTTP/1.1 keep-alive,
  HTTP/2, HTTP/3 from a cold start, HTTP/3 resumed with 0-RTT (ours);
  HTTP/2 and HTTP/3 (hls.js in headless Chromium);
* profiles: ``lan`` (2 ms RTT), ``good`` (20 ms), ``mobile`` (100 ms, 1 %
  loss), ``bad`` (300 ms, 3 % loss in bursts), ``trace`` (an HSDPA throughput
  trace on the downlink, 80 ms RTT).

Every delay, loss and rate here applies *per direction* (the relay's
convention): an RTT of R is R/2 each way, 1 % loss is 1 % of the packets each
way. Each viewer gets its own relay (its own access link), so viewers never
share a rate limit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from llhls.errors import ConfigError
from llhls.lab.impair import GilbertElliott, LinkConfig, RateSchedule

__all__ = [
    "TRACES_ENV",
    "DEFAULT_TRACE",
    "StreamKind",
    "Delivery",
    "Profile",
    "Scenario",
    "Plan",
    "STREAMS",
    "DELIVERIES",
    "BROWSER_DELIVERIES",
    "STARTUP_PROFILE",
    "STARTUP_DELIVERIES",
    "STARTUP_STAGGER_S",
    "STARTUP_TRIAL_S",
    "PROFILES",
    "build_plan",
    "traces_dir",
    "link_configs",
    "split_names",
]

TRACES_ENV = "LLHLS_TRACES"
"""Environment variable naming the shared traces directory (holds ``network/hsdpa``)."""

DEFAULT_TRACE = "car.snaroya-smestad-report.2011-02-14_2032CET.log"
"""The HSDPA trace of the ``trace`` profile (mean 1.8 Mbit/s, 10 % of it below 0.8)."""

Player = Literal["ours", "hlsjs", "startup"]


@dataclass(frozen=True, slots=True)
class StreamKind:
    """One way of packaging the test source."""

    key: str
    """Short name: ``ll``, ``classic2``, ``classic6``."""
    label: str
    """For people: ``LL-HLS``, ``classic 6 s``."""
    low_latency: bool
    """Parts and preload hints (LL-HLS) or whole segments only."""
    segment: Fraction
    """Segment duration in seconds."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a player fetches: protocol and connection handling."""

    key: str
    """``h1``, ``h1ka``, ``h2``, ``h3``, ``h3-0rtt``."""
    label: str
    """For people."""
    protocol: Literal["h1", "h2", "h3"]
    """Transport."""
    h1_reuse: bool = True
    """HTTP/1.1 keep-alive (False: one connection per request)."""
    zero_rtt: bool = False
    """HTTP/3 resumed with a session ticket from an earlier visit (0-RTT)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """A network condition, applied by the impairment relay."""

    key: str
    """``lan``, ``good``, ``mobile``, ``bad``, ``trace``."""
    label: str
    """For people, e.g. ``100 ms RTT, 1 % loss``."""
    rtt_ms: float
    """Round trip added by the relay (half each way)."""
    loss: float = 0.0
    """Random loss per packet and direction."""
    burst_loss: float = 0.0
    """Mean loss in Gilbert-Elliott bursts per direction (0: none)."""
    burst_packets: float = 4.0
    """Mean length of a loss burst, packets."""
    trace: str | None = None
    """File name of an HSDPA trace (under ``network/hsdpa``) rating the downlink."""
    queue_ms: float = 300.0
    """Bottleneck queue in ms (only with a trace)."""


STREAMS: dict[str, StreamKind] = {
    s.key: s
    for s in (
        StreamKind("classic6", "classic HLS 6 s", False, Fraction(6)),
        StreamKind("classic2", "classic HLS 2 s", False, Fraction(2)),
        StreamKind("ll", "LL-HLS", True, Fraction(2)),
    )
}
"""Every stream kind, in report order."""

DELIVERIES: dict[str, Delivery] = {
    d.key: d
    for d in (
        Delivery("h1", "HTTP/1.1, no reuse", "h1", h1_reuse=False),
        Delivery("h1ka", "HTTP/1.1 keep-alive", "h1"),
        Delivery("h2", "HTTP/2", "h2"),
        Delivery("h3", "HTTP/3", "h3"),
        Delivery("h3-0rtt", "HTTP/3 + 0-RTT", "h3", zero_rtt=True),
    )
}
"""Every delivery of our player, in report order."""

STARTUP_PROFILE = "mobile"
"""The profile of the startup trials (100 ms RTT)."""
STARTUP_DELIVERIES: tuple[str, ...] = ("h2", "h3", "h3-0rtt")
"""Deliveries compared in the startup trials."""
STARTUP_STAGGER_S = 2.5
"""Seconds between two startup trials (each plays :data:`STARTUP_TRIAL_S`)."""
STARTUP_TRIAL_S = 0.5
"""Seconds each startup trial plays after its first frame."""

BROWSER_DELIVERIES: tuple[str, ...] = ("h2", "h3")
"""Deliveries hls.js is measured with (Chromium forced onto QUIC for h3)."""

PROFILES: dict[str, Profile] = {
    p.key: p
    for p in (
        Profile("lan", "LAN: 2 ms RTT", 2.0),
        Profile("good", "good: 20 ms RTT", 20.0),
        Profile("mobile", "mobile: 100 ms RTT, 1 % loss", 100.0, loss=0.01),
        Profile("bad", "bad: 300 ms RTT, 3 % burst loss", 300.0, burst_loss=0.03),
        Profile("trace", "HSDPA trace (car), 80 ms RTT", 80.0, trace=DEFAULT_TRACE),
    )
}
"""Every network profile, in report order."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One cell of the comparison."""

    stream: str
    """Key of :data:`STREAMS`."""
    profile: str
    """Key of :data:`PROFILES`."""
    delivery: str
    """Key of :data:`DELIVERIES`."""
    player: Player
    """``ours``, ``hlsjs``, or ``startup``: startup trials of ours (many short cold
    or 0-RTT starts one after another, see :data:`STARTUP_TRIAL_S`)."""

    @property
    def key(self) -> str:
        """``stream/profile/delivery/player``: unique within a plan."""
        return f"{self.stream}/{self.profile}/{self.delivery}/{self.player}"

    def describe(self) -> str:
        """One line for people."""
        who = {"ours": "llhls play", "hlsjs": "hls.js", "startup": "startup trials"}[self.player]
        return (
            f"{STREAMS[self.stream].label} | {self.profile} | "
            f"{DELIVERIES[self.delivery].label} | {who}"
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Scenarios and how each is run."""

    scenarios: tuple[Scenario, ...]
    """In run order: stream kind, then profile, then delivery, ours before hls.js."""
    duration: float
    """Seconds each viewer plays (from its first frame)."""
    viewers: int
    """Players per scenario of ours, joining ``stagger`` seconds apart."""
    browser_viewers: int
    """hls.js tabs per browser scenario."""
    stagger: float
    """Seconds between two viewers' joins."""
    parallel: int
    """Scenario slots run at once (an hls.js scenario takes two)."""
    quick: bool = False
    """The CI-sized plan."""
    profiles: tuple[str, ...] = field(default=())
    """Profiles in the plan, in order."""
    startup_trials: int = 0
    """Starts per delivery in the ``startup`` scenarios."""

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream kinds in the plan, in order."""
        return tuple(dict.fromkeys(s.stream for s in self.scenarios))

    def estimate_s(self, scenario: Scenario) -> float:
        """Rough wall seconds of one scenario (for the ETA)."""
        if scenario.player == "startup":
            return STARTUP_STAGGER_S * self.startup_trials + 4.0
        n = self.viewers if scenario.player == "ours" else self.browser_viewers
        startup = 2.0 + PROFILES[scenario.profile].rtt_ms / 1000 * 8
        overhead = 2.0 if scenario.player == "ours" else 3.0
        return self.duration + self.stagger * (n - 1) + startup + overhead

    def weight(self, scenario: Scenario) -> int:
        """Slots a scenario occupies while it runs."""
        return min(2, self.parallel) if scenario.player == "hlsjs" else 1


def split_names(text: str | Sequence[str] | None, known: Sequence[str], what: str) -> list[str]:
    """``"lan,mobile"`` (or a list of such) -> names, checked against ``known``."""
    if text is None:
        return []
    items = [text] if isinstance(text, str) else list(text)
    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown {what} {name!r}: choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def build_plan(
    *,
    quick: bool = False,
    profiles: Sequence[str] = (),
    streams: Sequence[str] = (),
    deliveries: Sequence[str] = (),
    browser: bool = True,
    duration: float | None = None,
    viewers: int | None = None,
    parallel: int | None = None,
    startup_trials: int | None = None,
) -> Plan:
    """The scenarios to run. ``quick``: LL-HLS and classic 6 s on ``lan`` and ``mobile``
    with HTTP/2, HTTP/3 and HTTP/3 + 0-RTT, one hls.js scenario, short runs. Empty
    selections mean the plan's default. Raises :class:`ConfigError` on bad values."""
    if quick:
        profiles = profiles or ("lan", "mobile")
        streams = streams or ("classic6", "ll")
        deliveries = deliveries or ("h2", "h3", "h3-0rtt")
    profiles = list(profiles or PROFILES)
    streams = [s for s in STREAMS if s in (streams or STREAMS)]
    deliveries = [d for d in DELIVERIES if d in (deliveries or DELIVERIES)]
    duration = duration if duration is not None else (8.0 if quick else 15.0)
    viewers = viewers if viewers is not None else (2 if quick else 3)
    if startup_trials is None:
        startup_trials = 4 if quick else 12
    if not 0 <= startup_trials <= 40:
        raise ConfigError(f"--startup-trials must be 0..40, got {startup_trials}")
    parallel = parallel if parallel is not None else 3
    if not (duration > 0 and duration <= 3600):
        raise ConfigError(f"--duration must be in (0, 3600] seconds, got {duration:g}")
    if not 1 <= viewers <= 8:
        raise ConfigError(f"--viewers must be 1..8, got {viewers}")
    if not 1 <= parallel <= 8:
        raise ConfigError(f"--parallel must be 1..8, got {parallel}")
    for name in profiles:
        if name not in PROFILES:
            raise ConfigError(f"unknown profile {name!r}: choose from {', '.join(PROFILES)}")
    scenarios: list[Scenario] = []
    # LL-HLS first: its stream is ready within seconds while the classic ones warm up
    for stream in sorted(streams, key=lambda s: s != "ll"):
        for profile in profiles:
            for delivery in deliveries:
                scenarios.append(Scenario(stream, profile, delivery, "ours"))
            if not browser:
                continue
            if quick:
                # one hls.js scenario: LL-HLS over HTTP/3 on the first profile
                if stream == "ll" and profile == profiles[0]:
                    scenarios.append(Scenario(stream, profile, "h3", "hlsjs"))
                continue
            for delivery in BROWSER_DELIVERIES:
                scenarios.append(Scenario(stream, profile, delivery, "hlsjs"))
        if stream == "ll" and STARTUP_PROFILE in profiles and startup_trials > 0:
            for delivery in STARTUP_DELIVERIES:
                if delivery in deliveries:
                    scenarios.append(Scenario(stream, STARTUP_PROFILE, delivery, "startup"))
    if not scenarios:
        raise ConfigError("the selection leaves no scenario to run")
    return Plan(
        scenarios=tuple(scenarios),
        duration=duration,
        viewers=viewers,
        browser_viewers=min(viewers, 2),
        stagger=2.0 if quick else 3.0,
        parallel=parallel,
        quick=quick,
        profiles=tuple(profiles),
        startup_trials=startup_trials,
    )


def traces_dir(override: str | Path | None = None) -> Path:
    """The shared traces directory: ``override``, else ``$LLHLS_TRACES``, else
    ``../shared/traces`` beside the repository. Raises :class:`ConfigError` when
    it does not hold ``network/hsdpa``."""
    if override is not None:
        candidate, how = Path(override), "--traces"
    elif os.environ.get(TRACES_ENV):
        candidate, how = Path(os.environ[TRACES_ENV]), f"${TRACES_ENV}"
    else:
        repo = Path(__file__).resolve().parents[2]
        candidate, how = repo.parent / "shared" / "traces", "the default (../shared/traces)"
    if not (candidate / "network" / "hsdpa").is_dir():
        raise ConfigError(
            f"no network traces at {candidate} ({how}): the 'trace' profile needs "
            f"network/hsdpa/ there; pass --traces DIR, set ${TRACES_ENV}, or leave the "
            "profile out (--profiles lan,good,mobile,bad)"
        )
    return candidate


def link_configs(
    profile: Profile, rate: RateSchedule | None = None
) -> tuple[LinkConfig, LinkConfig]:
    """(client->server, server->client) relay settings of a profile. ``rate`` is the
    loaded trace of a trace profile (downlink only)."""
    if profile.trace is not None and rate is None:
        raise ConfigError(f"profile {profile.key!r} needs its trace loaded")
    burst = (
        GilbertElliott.from_mean(profile.burst_loss, profile.burst_packets)
        if profile.burst_loss > 0
        else None
    )
    one_way = profile.rtt_ms / 2
    up = LinkConfig(delay_ms=one_way, loss=profile.loss, burst=burst)
    down = LinkConfig(
        delay_ms=one_way,
        loss=profile.loss,
        burst=burst,
        rate=rate,
        queue_ms=profile.queue_ms if rate is not None else LinkConfig().queue_ms,
    )
    return up, down
