"""CMAF writer: the header (init segment) and fragments of one track.

One track per CMAF header (CMAF track files, 23000-19 7.3). A fragment is
``[styp] [prft] moof mdat``: ``styp`` only where a CMAF segment starts, so that
the segment is exactly the concatenation of its parts (LL-HLS partial
segments). Sample data follows ``moof`` in one ``mdat``; ``trun``'s
data_offset is relative to the ``moof`` (``tfhd`` default-base-is-moof).
"""

from __future__ import annotations

from collections.abc import Sequence

from llhls.cmaf.boxes import (
    CMAF_HEADER_BRANDS,
    CMAF_SEGMENT_BRANDS,
    SAMPLE_FLAGS_NON_SYNC,
    SAMPLE_FLAGS_SYNC,
    ElementaryStreamDescriptor,
    FileType,
    ProducerReferenceTime,
    TrackFragmentHeader,
    TrackRun,
    push_audio_sample_fields,
    push_btrt,
    push_esds,
    push_file_type,
    push_hdlr,
    push_mdhd,
    push_mfhd,
    push_mvhd,
    push_prft,
    push_tfdt,
    push_tfhd,
    push_tkhd,
    push_trex,
    push_trun,
    push_visual_sample_fields,
)
from llhls.cmaf.buffer import UINT32_MAX, Buffer
from llhls.errors import BoxError
from llhls.media import Sample, TrackInfo

__all__ = ["HEADER_FILE_TYPE", "SEGMENT_FILE_TYPE", "init_segment", "fragment"]

HEADER_FILE_TYPE = FileType(CMAF_HEADER_BRANDS[0], 0, CMAF_HEADER_BRANDS[1])
"""The ``ftyp`` of every CMAF header we write."""
SEGMENT_FILE_TYPE = FileType(CMAF_SEGMENT_BRANDS[0], 0, CMAF_SEGMENT_BRANDS[1])
"""The ``styp`` written at the start of each CMAF segment."""

_AAC_MAX_FRAME_BYTES_PER_CHANNEL = 768
"""6144 bits: the AAC decoder input buffer per channel (14496-3 4.5.3.1)."""


def init_segment(track: TrackInfo) -> bytes:
    """The CMAF header of ``track``: ``ftyp`` + ``moov`` with an empty sample table and ``mvex``.

    Video tracks carry ``avc1`` + ``avcC`` (``track.codec_private`` is the
    AVCDecoderConfigurationRecord) and a ``btrt`` when ``track.bitrate`` is
    known; audio tracks carry ``mp4a`` + ``esds`` (``codec_private`` is the
    AudioSpecificConfig).
    """
    video = track.kind == "video"
    if video and not track.codec.startswith(("avc1", "avc3")):
        raise BoxError(f"unsupported video codec {track.codec!r} (H.264 only)")
    if not video and not track.codec.startswith("mp4a"):
        raise BoxError(f"unsupported audio codec {track.codec!r} (AAC only)")
    if not track.codec_private:
        raise BoxError(f"track {track.track_id} has no codec configuration")
    buf = Buffer()
    push_file_type(buf, "ftyp", HEADER_FILE_TYPE)
    with buf.box("moov"):
        push_mvhd(buf, track.timescale, track.track_id + 1)
        with buf.box("trak"):
            push_tkhd(buf, track.track_id, track.width, track.height, audio=not video)
            with buf.box("mdia"):
                push_mdhd(buf, track.timescale)
                push_hdlr(
                    buf, "vide" if video else "soun", "VideoHandler" if video else "SoundHandler"
                )
                with buf.box("minf"):
                    _push_media_header(buf, video)
                    with buf.box("dinf"), buf.box("dref", version=0):
                        buf.push_uint32(1)  # entry_count
                        with buf.box("url ", version=0, flags=1):  # media in this file
                            pass
                    with buf.box("stbl"):
                        with buf.box("stsd", version=0):
                            buf.push_uint32(1)  # entry_count
                            _push_sample_entry(buf, track)
                        # empty tables: every sample is described by the fragments
                        for box_type in ("stts", "stsc", "stsz", "stco"):
                            with buf.box(box_type, version=0):
                                if box_type == "stsz":
                                    buf.push_uint32(0)  # sample_size (then sample_count)
                                buf.push_uint32(0)  # entry_count / sample_count
        with buf.box("mvex"):
            push_trex(buf, track.track_id)
    return buf.data


def _push_media_header(buf: Buffer, video: bool) -> None:
    if video:
        with buf.box("vmhd", version=0, flags=1):
            buf.push_zeros(8)  # graphicsmode copy, opcolor 0,0,0
    else:
        with buf.box("smhd", version=0):
            buf.push_zeros(4)  # balance 0, reserved


def _push_sample_entry(buf: Buffer, track: TrackInfo) -> None:
    if track.kind == "video":
        with buf.box(track.codec[:4]):
            push_visual_sample_fields(buf, track.width, track.height)
            with buf.box("avcC"):
                buf.push_bytes(track.codec_private)
            if track.bitrate > 0:
                push_btrt(buf, 0, track.bitrate, track.bitrate)
    else:
        with buf.box("mp4a"):
            push_audio_sample_fields(buf, track.channels, track.sample_rate)
            esd = ElementaryStreamDescriptor(
                audio_specific_config=track.codec_private,
                buffer_size=_AAC_MAX_FRAME_BYTES_PER_CHANNEL * track.channels,
                max_bitrate=track.bitrate,
                avg_bitrate=track.bitrate,
            )
            push_esds(buf, esd)


def fragment(
    track: TrackInfo,
    sequence_number: int,
    samples: Sequence[Sample],
    *,
    segment_start: bool,
) -> bytes:
    """One CMAF chunk/fragment: ``[styp] [prft] moof(mfhd, traf(tfhd, tfdt, trun)) mdat``.

    ``styp`` is written when ``segment_start``. ``prft`` (version 1, flags 0 =
    encoder input) anchors ``samples[0].capture_us`` to ``samples[0].pts``; it
    is left out when that capture time is unknown (0). Samples must be
    contiguous in decode time. Composition offsets (``trun`` version 1, signed)
    are written only when a sample has a non-zero one.
    """
    if not samples:
        raise BoxError("a fragment needs at least one sample")
    first = samples[0]
    if first.dts < 0:
        raise BoxError(f"decode time {first.dts} is negative")
    expected = first.dts
    for index, sample in enumerate(samples):
        if sample.dts != expected:
            raise BoxError(
                f"sample {index} has dts {sample.dts}, expected {expected}: "
                "a track run cannot hold gaps or overlaps"
            )
        expected += sample.duration
    has_cts = any(s.cts_offset for s in samples)
    run = TrackRun(
        sample_count=len(samples),
        version=1 if has_cts else 0,
        data_offset=0,  # back-patched once the moof size is known
        durations=tuple(s.duration for s in samples),
        sizes=tuple(len(s.data) for s in samples),
        sample_flags=tuple(
            SAMPLE_FLAGS_SYNC if s.keyframe else SAMPLE_FLAGS_NON_SYNC for s in samples
        ),
        cts_offsets=tuple(s.cts_offset for s in samples) if has_cts else None,
    )

    buf = Buffer()
    if segment_start:
        push_file_type(buf, "styp", SEGMENT_FILE_TYPE)
    if first.capture_us > 0:
        if first.pts < 0:
            raise BoxError(f"presentation time {first.pts} is negative: prft cannot anchor it")
        push_prft(
            buf, ProducerReferenceTime.from_unix_us(track.track_id, first.capture_us, first.pts)
        )
    with buf.box("moof") as moof_start:
        push_mfhd(buf, sequence_number)
        with buf.box("traf"):
            push_tfhd(buf, TrackFragmentHeader(track.track_id, default_base_is_moof=True))
            push_tfdt(buf, first.dts)
            data_offset_at = push_trun(buf, run)
    moof_end = buf.tell()
    payload = b"".join(s.data for s in samples)
    mdat_size = 8 + len(payload)
    if mdat_size > UINT32_MAX:
        raise BoxError(f"mdat of {mdat_size} bytes exceeds the 32-bit size field")
    buf.push_uint32(mdat_size)
    buf.push_fourcc("mdat")
    buf.push_bytes(payload)
    assert data_offset_at is not None
    buf.seek(data_offset_at)
    buf.push_int32(moof_end - moof_start + 8)  # first payload byte, relative to the moof
    return buf.data
