"""The asyncio service: parked requests wake on notify() or at their deadline."""

from __future__ import annotations

import asyncio
from fractions import Fraction as F

import pytest

from llhls.origin.messages import Request, Response
from llhls.origin.service import Origin
from llhls.origin.store import RenditionSpec, Store, StreamSpec
from llhls.timing import ManualClock

HALF = F(1, 2)
VIDEO = RenditionSpec("720p", "video", "avc1.64001f", 3_000_000, 2_500_000, 1280, 720)
BASE_US = 1_700_000_000_000_000


def live_store(parts: int) -> Store:
    """A stream whose 720p rendition has ``parts`` parts of 0.5 s (4 per segment)."""
    store = Store()
    store.add_stream(StreamSpec("live", (VIDEO,), HALF, F(2)))
    store.set_init("live", "720p", b"init")
    for n in range(parts):
        publish(store, n)
    return store


def publish(store: Store, n: int) -> None:
    msn, index = divmod(n, 4)
    now = (n + 1) * 0.5
    store.add_part("live", "720p", msn, index, f"p{n}".encode(), HALF, index == 0, BASE_US, now)
    if index == 3:
        store.close_segment("live", "720p", msn, now)


def req(path: str, query: str = "") -> Request:
    return Request(method="GET", path=path, query=query)


async def until_parked(origin: Origin, count: int = 1) -> None:
    for _ in range(100):
        if origin.waiting >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{origin.waiting} parked, expected {count}")


@pytest.mark.asyncio
async def test_waiter_wakes_in_the_next_loop_iteration() -> None:
    clock = ManualClock(monotonic=4.5)
    store = live_store(9)  # part 2.0 is the last one
    origin = Origin(store, clock)
    task = asyncio.create_task(
        origin.handle(req("/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=1"))
    )
    await until_parked(origin)
    assert not task.done()
    publish(store, 9)  # part 2.1
    origin.notify()
    await asyncio.sleep(0)  # one loop iteration
    assert task.done()
    response = task.result()
    assert response.status == 200
    assert b'URI="part2.1.m4s"' in response.body
    assert origin.waiting == 0


@pytest.mark.asyncio
async def test_hinted_part_is_sent_when_published() -> None:
    clock = ManualClock(monotonic=4.5)
    store = live_store(9)
    origin = Origin(store, clock)
    task = asyncio.create_task(origin.handle(req("/live/720p/part2.1.m4s")))
    await until_parked(origin)
    origin.notify()  # a change that does not satisfy it: parked again
    await asyncio.sleep(0)
    await until_parked(origin)
    publish(store, 9)
    origin.notify()
    await asyncio.sleep(0)
    assert task.result().body == b"p9"


@pytest.mark.asyncio
async def test_deadline_on_the_virtual_clock_gives_503() -> None:
    clock = ManualClock(monotonic=10.0)
    origin = Origin(live_store(9), clock)
    task = asyncio.create_task(
        origin.handle(req("/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=1"))
    )
    await until_parked(origin)
    clock.advance(5.5)
    origin.notify()
    await asyncio.sleep(0)
    await until_parked(origin)  # 15.5 < 16: still blocked
    clock.advance(0.5)
    origin.notify()
    await asyncio.sleep(0)
    assert task.result().status == 503


class ScriptedClock:
    """A monotonic clock that returns the given readings, then the last one forever."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def monotonic(self) -> float:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def wall_us(self) -> int:
        return BASE_US


@pytest.mark.asyncio
async def test_deadline_timer_fires_without_notify() -> None:
    # first seen at 0 (deadline 6), decided at 5.99: parked for 10 ms, then 6.0 -> 503
    origin = Origin(live_store(9), ScriptedClock(0.0, 5.99, 6.0))
    response = await asyncio.wait_for(
        origin.handle(req("/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=1")), timeout=5
    )
    assert response.status == 503
    assert origin.waiting == 0


@pytest.mark.asyncio
async def test_end_of_stream_answers_every_waiter() -> None:
    clock = ManualClock(monotonic=4.5)
    store = live_store(9)
    origin = Origin(store, clock)
    tasks = [
        asyncio.create_task(origin.handle(req("/live/720p/media.m3u8", f"_HLS_msn={m}")))
        for m in (2, 3)
    ] + [asyncio.create_task(origin.handle(req("/live/720p/part2.1.m4s")))]
    await until_parked(origin, 3)
    store.end_stream("live", 4.5)
    origin.notify()
    await asyncio.sleep(0)
    statuses = [t.result().status for t in tasks]
    assert statuses == [200, 200, 404]
    assert tasks[0].result().body.endswith(b"#EXT-X-ENDLIST\n")


@pytest.mark.asyncio
async def test_many_waiters_share_one_rendering() -> None:
    clock = ManualClock(monotonic=4.5)
    store = live_store(9)
    origin = Origin(store, clock)
    tasks = [
        asyncio.create_task(origin.handle(req("/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=1")))
        for _ in range(200)
    ]
    await until_parked(origin, 200)
    publish(store, 9)
    origin.notify()
    await asyncio.sleep(0)
    bodies = {id(t.result().body) for t in tasks}
    assert len(bodies) == 1


@pytest.mark.asyncio
async def test_cancelled_waiter_leaves_no_trace() -> None:
    origin = Origin(live_store(9), ManualClock(monotonic=4.5))
    task = asyncio.create_task(origin.handle(req("/live/720p/part2.1.m4s")))
    await until_parked(origin)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert origin.waiting == 0
    origin.notify()


@pytest.mark.asyncio
async def test_fallback_serves_unclaimed_paths() -> None:
    seen: list[str] = []

    async def static(request: Request) -> Response | None:
        seen.append(request.path)
        if request.path == "/":
            return Response(200, (("content-type", "text/html"),), b"<html>")
        return None

    origin = Origin(live_store(1), ManualClock(), fallback=static)
    assert (await origin.handle(req("/"))).body == b"<html>"
    missing = await origin.handle(req("/nope"))
    assert missing.status == 404
    assert ("access-control-allow-origin", "*") in missing.headers
    hls = await origin.handle(req("/live/720p/init.mp4"))
    assert hls.body == b"init"
    assert seen == ["/", "/nope"]


@pytest.mark.asyncio
async def test_failing_fallback_is_503_and_no_fallback_is_404() -> None:
    async def broken(request: Request) -> Response | None:
        raise RuntimeError("disk on fire")

    origin = Origin(live_store(1), ManualClock(), fallback=broken)
    assert (await origin.handle(req("/"))).status == 503
    assert (await Origin(live_store(1), ManualClock()).handle(req("/"))).status == 404
