"""CMAF reader: a box tree, the CMAF header's track, and fragments' samples.

:func:`parse_boxes` splits bytes into a tree of :class:`Box` (children for
container boxes), :class:`BoxReader` does the same for a byte stream arriving
in pieces, :func:`read_init` recovers the :class:`~llhls.media.TrackInfo` of a
CMAF header and :func:`read_fragment` the samples of one or more
``[styp] [prft] moof mdat`` groups (a whole segment is the concatenation of its
parts).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from llhls.cmaf.boxes import (
    AUDIO_SAMPLE_FIELDS,
    VISUAL_SAMPLE_FIELDS,
    FileType,
    ProducerReferenceTime,
    TrackFragmentHeader,
    TrackRun,
    is_sync_sample,
    pull_audio_sample_fields,
    pull_btrt,
    pull_esds,
    pull_file_type,
    pull_hdlr,
    pull_mdhd,
    pull_mfhd,
    pull_prft,
    pull_tfdt,
    pull_tfhd,
    pull_tkhd,
    pull_trun,
    pull_visual_sample_fields,
)
from llhls.cmaf.buffer import Buffer
from llhls.cmaf.codecs import (
    aac_codec_string,
    avc_codec_string,
    parse_aac_audio_specific_config,
    parse_avc_decoder_config,
)
from llhls.errors import BoxError
from llhls.media import Sample, TrackInfo, TrackKind
from llhls.timing import MICROS, rescale

__all__ = ["Box", "BoxReader", "Fragment", "parse_boxes", "read_init", "read_fragment"]

_CHILD_OFFSETS: dict[str, int] = {
    "moov": 0,
    "trak": 0,
    "mdia": 0,
    "minf": 0,
    "dinf": 0,
    "stbl": 0,
    "mvex": 0,
    "moof": 0,
    "traf": 0,
    "edts": 0,
    "mfra": 0,
    "stsd": 8,  # FullBox header + entry_count
    "dref": 8,
    "avc1": VISUAL_SAMPLE_FIELDS,
    "avc3": VISUAL_SAMPLE_FIELDS,
    "mp4a": AUDIO_SAMPLE_FIELDS,
}
"""Boxes whose payload holds child boxes, and where in the payload they start."""

_HEADER = struct.Struct(">I4s")


@dataclass(frozen=True, slots=True)
class Box:
    """One box of a parsed buffer."""

    type: str
    """Four-character box type, e.g. ``moof``."""
    offset: int
    """Offset of the box's first byte in the parsed data (or stream)."""
    size: int
    """Total size including the header."""
    header_size: int
    """8, or 16 for a 64-bit ``largesize``."""
    payload: bytes
    """The body after the header (FullBox version/flags included)."""
    children: tuple[Box, ...] = ()
    """Parsed child boxes of a container (empty for leaf boxes)."""

    @property
    def payload_offset(self) -> int:
        """Offset of the payload's first byte in the parsed data."""
        return self.offset + self.header_size

    def find(self, box_type: str) -> Box | None:
        """The first child of ``box_type``, or None."""
        for child in self.children:
            if child.type == box_type:
                return child
        return None

    def require(self, *path: str) -> Box:
        """The descendant reached through ``path`` (first match at each step); BoxError if none."""
        box = self
        for box_type in path:
            found = box.find(box_type)
            if found is None:
                raise BoxError(f"{box.type!r} at offset {box.offset} has no {box_type!r} box")
            box = found
        return box

    def body(self) -> Buffer:
        """A :class:`Buffer` over the payload, for the ``pull_<box>`` functions."""
        return Buffer(self.payload)


def _header(data: bytes, pos: int, end: int, base: int) -> tuple[str, int, int]:
    """Parse the box header at ``pos``: ``(type, size, header_size)``; size 0 = to ``end``.

    ``base`` is added to offsets in error messages (stream offset of ``data[0]``).
    """
    at = base + pos
    if end - pos < 8:
        raise BoxError(f"truncated box header at offset {at}: {end - pos} of 8 bytes")
    size, raw_type = _HEADER.unpack_from(data, pos)
    box_type = raw_type.decode("latin-1")
    header_size = 8
    if size == 1:
        if end - pos < 16:
            raise BoxError(f"truncated 64-bit size of {box_type!r} at offset {at}")
        (size,) = struct.unpack_from(">Q", data, pos + 8)
        header_size = 16
    elif size == 0:
        size = end - pos
    if size < header_size:
        raise BoxError(f"box {box_type!r} at offset {at} declares size {size} < {header_size}")
    if size > end - pos:
        raise BoxError(
            f"box {box_type!r} at offset {at} declares size {size} "
            f"but only {end - pos} bytes remain"
        )
    return box_type, size, header_size


def _parse(data: bytes, pos: int, end: int, base: int) -> list[Box]:
    boxes: list[Box] = []
    while pos < end:
        box_type, size, header_size = _header(data, pos, end, base)
        body_start = pos + header_size
        children: tuple[Box, ...] = ()
        child_offset = _CHILD_OFFSETS.get(box_type)
        if child_offset is not None:
            if body_start + child_offset > pos + size:
                raise BoxError(f"box {box_type!r} at offset {base + pos} too short for its fields")
            children = tuple(_parse(data, body_start + child_offset, pos + size, base))
        boxes.append(
            Box(box_type, base + pos, size, header_size, data[body_start : pos + size], children)
        )
        pos += size
    return boxes


def parse_boxes(data: bytes) -> list[Box]:
    """Parse ``data`` into its top-level boxes (containers with their children).

    Raises :class:`~llhls.errors.BoxError` on a truncated header or a box whose
    size overruns its parent or the data.
    """
    data = bytes(data)
    return _parse(data, 0, len(data), 0)


class BoxReader:
    """Incremental box splitter: feed bytes as they arrive, get complete top-level boxes.

    A box whose size is 0 ("to the end of the file") is only returned by :meth:`close`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # stream offset of _buffer[0]

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as a box."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Box]:
        """Add ``data``; return the top-level boxes it completes, in order."""
        self._buffer += data
        boxes: list[Box] = []
        buffer = self._buffer
        pos = 0
        while len(buffer) - pos >= 8:
            (size,) = struct.unpack_from(">I", buffer, pos)
            if size == 1:
                if len(buffer) - pos < 16:
                    break
                (size,) = struct.unpack_from(">Q", buffer, pos + 8)
            elif size == 0:
                break
            if size < 8:
                raise BoxError(f"box at stream offset {self._offset + pos} declares size {size}")
            if len(buffer) - pos < size:
                break
            chunk = bytes(buffer[pos : pos + size])
            boxes.extend(_parse(chunk, 0, size, self._offset + pos))
            pos += size
        if pos:
            del buffer[:pos]
            self._offset += pos
        return boxes

    def close(self) -> list[Box]:
        """End of stream: return a final size-0 box; BoxError if a box is incomplete."""
        if not self._buffer:
            return []
        chunk = bytes(self._buffer)
        boxes = _parse(chunk, 0, len(chunk), self._offset)  # raises on truncation
        self._offset += len(chunk)
        self._buffer.clear()
        return boxes


# -- CMAF header ------------------------------------------------------------------


def read_init(data: bytes) -> TrackInfo:
    """The track of a CMAF header (``ftyp`` + ``moov`` with exactly one ``trak``)."""
    boxes = parse_boxes(data)
    moov = next((b for b in boxes if b.type == "moov"), None)
    if moov is None:
        raise BoxError("no 'moov' box: not a CMAF header")
    traks = [b for b in moov.children if b.type == "trak"]
    if len(traks) != 1:
        raise BoxError(f"a CMAF header holds exactly one track, found {len(traks)}")
    trak = traks[0]
    track_id, _, _ = pull_tkhd(trak.require("tkhd").body())
    mdia = trak.require("mdia")
    timescale, _ = pull_mdhd(mdia.require("mdhd").body())
    handler, _ = pull_hdlr(mdia.require("hdlr").body())
    stsd = mdia.require("minf", "stbl", "stsd")
    if not stsd.children:
        raise BoxError("'stsd' has no sample entry")
    entry = stsd.children[0]
    kind: TrackKind
    width = height = sample_rate = channels = bitrate = 0
    if handler == "vide" and entry.type in ("avc1", "avc3"):
        kind = "video"
        width, height = pull_visual_sample_fields(entry.body())
        record = entry.require("avcC").payload
        sps, _ = parse_avc_decoder_config(record)
        if not sps:
            raise BoxError("avcC has no SPS")
        codec = avc_codec_string(sps[0])
        private = record
        btrt = entry.find("btrt")
        if btrt is not None:
            bitrate = pull_btrt(btrt.body())[2]
    elif handler == "soun" and entry.type == "mp4a":
        kind = "audio"
        channels, sample_rate = pull_audio_sample_fields(entry.body())
        esd = pull_esds(entry.require("esds").body())
        private = esd.audio_specific_config
        codec = aac_codec_string(private)
        bitrate = esd.avg_bitrate
        if sample_rate == 0:
            sample_rate = parse_aac_audio_specific_config(private)[1]
    else:
        raise BoxError(f"unsupported track: handler {handler!r}, sample entry {entry.type!r}")
    try:
        return TrackInfo(
            track_id=track_id,
            kind=kind,
            timescale=timescale,
            codec=codec,
            codec_private=private,
            width=width,
            height=height,
            sample_rate=sample_rate,
            channels=channels,
            bitrate=bitrate,
        )
    except ValueError as exc:
        raise BoxError(f"invalid track in CMAF header: {exc}") from exc


# -- fragments ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fragment:
    """What :func:`read_fragment` found in one or more ``moof`` + ``mdat`` groups."""

    track_id: int
    """track_ID of every ``traf``."""
    sequence_number: int
    """``mfhd`` sequence number of the first ``moof``."""
    base_decode_time: int
    """``tfdt`` of the first ``moof``: decode time of the first sample."""
    samples: tuple[Sample, ...]
    """Every sample in decode order, with capture times from ``prft`` where present."""
    prft: ProducerReferenceTime | None
    """The first ``prft`` of the track (None when there is none)."""
    styp: FileType | None
    """The ``styp`` before the first ``moof`` (present at a segment start)."""
    sequence_numbers: tuple[int, ...]
    """``mfhd`` sequence number of every ``moof``, in order."""

    @property
    def has_styp(self) -> bool:
        """True when the data starts a CMAF segment (carries ``styp``)."""
        return self.styp is not None

    @property
    def duration(self) -> int:
        """Sum of sample durations in ticks."""
        return sum(s.duration for s in self.samples)


def read_fragment(data: bytes, track: TrackInfo | None = None) -> Fragment:
    """Samples and metadata of ``[styp] [prft] moof mdat`` groups of one track.

    A ``prft`` applies to the ``moof`` that follows it. With ``track`` given,
    every sample of that ``moof`` gets ``capture_us`` = the prft time shifted
    by its presentation-time distance from media_time (and the track_ID is
    checked); without, only the sample whose pts equals media_time gets it,
    others keep 0 (unknown).
    """
    data = bytes(data)
    boxes = parse_boxes(data)
    mdats = [(b.payload_offset, b.offset + b.size) for b in boxes if b.type == "mdat"]
    styp: FileType | None = None
    first_prft: ProducerReferenceTime | None = None
    pending_prft: ProducerReferenceTime | None = None
    samples: list[Sample] = []
    sequence_numbers: list[int] = []
    track_id = track.track_id if track is not None else None
    base_decode_time = 0
    for box in boxes:
        if box.type == "styp" and not sequence_numbers:
            styp = pull_file_type(box.body())
        elif box.type == "prft":
            pending_prft = pull_prft(box.body())
        elif box.type == "moof":
            sequence_numbers.append(pull_mfhd(box.require("mfhd").body()))
            for traf in (c for c in box.children if c.type == "traf"):
                tfhd = pull_tfhd(traf.require("tfhd").body())
                if track_id is None:
                    track_id = tfhd.track_id
                elif tfhd.track_id != track_id:
                    raise BoxError(f"fragment mixes track {tfhd.track_id} with track {track_id}")
                prft = (
                    pending_prft
                    if pending_prft is not None and pending_prft.track_id == track_id
                    else None
                )
                if prft is not None and first_prft is None:
                    first_prft = prft
                decode_time = pull_tfdt(traf.require("tfdt").body())
                if len(sequence_numbers) == 1 and not samples:
                    base_decode_time = decode_time
                samples.extend(
                    _traf_samples(data, box, traf, tfhd, decode_time, mdats, prft, track)
                )
            pending_prft = None
    if not sequence_numbers or track_id is None:
        raise BoxError("no 'moof' with a 'traf': not a CMAF fragment")
    return Fragment(
        track_id=track_id,
        sequence_number=sequence_numbers[0],
        base_decode_time=base_decode_time,
        samples=tuple(samples),
        prft=first_prft,
        styp=styp,
        sequence_numbers=tuple(sequence_numbers),
    )


def _traf_samples(
    data: bytes,
    moof: Box,
    traf: Box,
    tfhd: TrackFragmentHeader,
    decode_time: int,
    mdats: list[tuple[int, int]],
    prft: ProducerReferenceTime | None,
    track: TrackInfo | None,
) -> list[Sample]:
    if tfhd.base_data_offset is not None:
        base = tfhd.base_data_offset
    else:
        # default-base-is-moof, or (first traf, no flag) the moof as well (14496-12 8.8.7.1)
        base = moof.offset
    samples: list[Sample] = []
    cursor = base
    dts = decode_time
    for trun_box in (c for c in traf.children if c.type == "trun"):
        run = pull_trun(trun_box.body())
        if run.data_offset is not None:
            cursor = base + run.data_offset
        durations = _column(run.durations, tfhd.default_sample_duration, run, "duration")
        sizes = _column(run.sizes, tfhd.default_sample_size, run, "size")
        flags = run.sample_flags
        if flags is None:
            default = tfhd.default_sample_flags
            rest = (default if default is not None else 0,) * run.sample_count
            if run.first_sample_flags is not None and run.sample_count:
                rest = (run.first_sample_flags, *rest[1:])
            flags = rest
        cts = run.cts_offsets or (0,) * run.sample_count
        end = cursor + sum(sizes)
        if not any(start <= cursor and end <= stop for start, stop in mdats):
            raise BoxError(
                f"trun data [{cursor}, {end}) of track {tfhd.track_id} is not inside an 'mdat'"
            )
        for i in range(run.sample_count):
            size = sizes[i]
            if durations[i] <= 0:
                raise BoxError(f"sample at dts {dts} has duration {durations[i]}")
            pts = dts + cts[i]
            samples.append(
                Sample(
                    data=data[cursor : cursor + size],
                    dts=dts,
                    duration=durations[i],
                    keyframe=is_sync_sample(flags[i]),
                    cts_offset=cts[i],
                    capture_us=_capture_us(prft, pts, track),
                )
            )
            cursor += size
            dts += durations[i]
    return samples


def _column(
    column: tuple[int, ...] | None, default: int | None, run: TrackRun, name: str
) -> tuple[int, ...]:
    if column is not None:
        return column
    if default is None:
        raise BoxError(f"trun has no sample {name} and tfhd no default")
    return (default,) * run.sample_count


def _capture_us(prft: ProducerReferenceTime | None, pts: int, track: TrackInfo | None) -> int:
    if prft is None:
        return 0
    if track is not None:
        return prft.unix_us + rescale(pts - prft.media_time, track.timescale, MICROS)
    return prft.unix_us if pts == prft.media_time else 0
