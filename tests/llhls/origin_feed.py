"""Shared fixtures of the origin tests: a store fed with synthetic parts."""

from __future__ import annotations

from fractions import Fraction as F

from llhls.origin.core import OriginConfig, Ready, Unclaimed, Wait, decide
from llhls.origin.messages import Request, Response
from llhls.origin.store import RenditionSpec, Store, StreamSpec

BASE_US = 1_700_000_000_000_000  # PDT of media time 0: 2023-11-14T22:13:20Z
HALF = F(1, 2)
VIDEO = RenditionSpec("720p", "video", "avc1.64001f", 3_000_000, 2_500_000, 1280, 720, F(30))
VIDEO_LOW = RenditionSpec("360p", "video", "avc1.42c01e", 800_000, 700_000, 640, 360, F(30))
AUDIO = RenditionSpec(
    "audio", "audio", "mp4a.40.2", 130_000, 128_000, sample_rate=48_000, channels=2
)
RIDS = ("720p", "360p", "audio")


def ll_spec(**kw: object) -> StreamSpec:
    """TD 2, PART-TARGET 0.5: four parts per segment keep the goldens short."""
    args: dict[str, object] = {
        "name": "live",
        "renditions": (VIDEO, VIDEO_LOW, AUDIO),
        "part_target": HALF,
        "segment_target": F(2),
        "window": F(8),
    }
    args.update(kw)
    return StreamSpec(**args)  # type: ignore[arg-type]


class Live:
    """Publishes synthetic parts the way the pipeline does: each part at the wall time
    its last sample ends (``t0`` + media time), segments closed right after their last
    part."""

    def __init__(
        self, store: Store, spec: StreamSpec, per_segment: int = 4, t0: float = 0.0
    ) -> None:
        self.store = store
        self.spec = spec
        self.per_segment = per_segment
        self.t0 = t0
        self.part = spec.part_target if spec.part_target is not None else spec.segment_target
        self.pos = {r.id: (0, 0, F(0)) for r in spec.renditions}
        store.add_stream(spec)
        for r in spec.renditions:
            store.set_init(spec.name, r.id, f"init-{r.id}".encode())

    def step(self, rids: tuple[str, ...] | None = None) -> float:
        """Publish the next part of each rendition; return the publication time."""
        now = 0.0
        for rid in rids if rids is not None else tuple(self.pos):
            msn, index, start = self.pos[rid]
            now = self.t0 + float(start + self.part)
            audio = rid == "audio"
            self.store.add_part(
                self.spec.name,
                rid,
                msn,
                index,
                f"{rid}:{msn}.{index}".encode(),
                self.part,
                index == 0 or audio,
                BASE_US + int(start * 1_000_000),
                now,
            )
            if index == self.per_segment - 1:
                self.store.close_segment(self.spec.name, rid, msn, now)
                self.pos[rid] = (msn + 1, 0, start + self.part)
            else:
                self.pos[rid] = (msn, index + 1, start + self.part)
        return now

    def run(self, parts: int) -> float:
        now = self.t0
        for _ in range(parts):
            now = self.step()
        return now


def get(
    store: Store,
    path: str,
    query: str = "",
    now: float = 100.0,
    *,
    first_seen: float | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    config: OriginConfig | None = None,
) -> Ready | Wait | Unclaimed:
    request = Request(method=method, path=path, query=query, headers=headers or {})
    return decide(request, store, now, config, first_seen=first_seen)


def ready(decision: Ready | Wait | Unclaimed) -> Response:
    assert isinstance(decision, Ready), decision
    return decision.response


def header(response: Response, name: str) -> str | None:
    values = [v for k, v in response.headers if k == name]
    assert len(values) <= 1, response.headers
    return values[0] if values else None


def text(decision: Ready | Wait | Unclaimed) -> str:
    response = ready(decision)
    assert response.status == 200, response
    return response.body.decode()


def blocked_live(parts: int = 9) -> tuple[Store, Live, float]:
    store = Store()
    live = Live(store, ll_spec())
    return store, live, live.run(parts)  # segments 0, 1 closed; part 2.0 published
