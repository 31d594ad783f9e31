"""ISO-BMFF / CMAF boxes as paired ``push_<box>`` / ``pull_<box>`` functions.

``push_<box>(buf, ...)`` writes the whole box (header included) at the
buffer's cursor. ``pull_<box>(buf)`` reads the box *body* (what follows the
8-byte header, FullBox version/flags included) from a buffer positioned at
its start, e.g. ``pull_tfdt(Buffer(box.payload))`` on a box found by
:func:`llhls.cmaf.reader.parse_boxes`.

Field layouts follow ISO/IEC 14496-12 (ISOBMFF), 14496-14 (``esds``),
14496-15 (``avcC``) and the CMAF constraints of ISO/IEC 23000-19.
"""

from __future__ import annotations

from dataclasses import dataclass

from llhls.cmaf.buffer import UINT32_MAX, Buffer
from llhls.errors import BoxError

__all__ = [
    "CMAF_HEADER_BRANDS",
    "CMAF_SEGMENT_BRANDS",
    "SAMPLE_FLAGS_SYNC",
    "SAMPLE_FLAGS_NON_SYNC",
    "NTP_UNIX_OFFSET",
    "PRFT_ENCODER_INPUT",
    "TFHD_BASE_DATA_OFFSET",
    "TFHD_SAMPLE_DESCRIPTION_INDEX",
    "TFHD_DEFAULT_SAMPLE_DURATION",
    "TFHD_DEFAULT_SAMPLE_SIZE",
    "TFHD_DEFAULT_SAMPLE_FLAGS",
    "TFHD_DURATION_IS_EMPTY",
    "TFHD_DEFAULT_BASE_IS_MOOF",
    "TRUN_DATA_OFFSET",
    "TRUN_FIRST_SAMPLE_FLAGS",
    "TRUN_SAMPLE_DURATION",
    "TRUN_SAMPLE_SIZE",
    "TRUN_SAMPLE_FLAGS",
    "TRUN_SAMPLE_CTS_OFFSET",
    "VISUAL_SAMPLE_FIELDS",
    "AUDIO_SAMPLE_FIELDS",
    "FileType",
    "ProducerReferenceTime",
    "TrackFragmentHeader",
    "TrackRun",
    "ElementaryStreamDescriptor",
    "sample_flags",
    "is_sync_sample",
    "unix_us_to_ntp",
    "ntp_to_unix_us",
    "push_file_type",
    "pull_file_type",
    "push_prft",
    "pull_prft",
    "push_mfhd",
    "pull_mfhd",
    "push_tfhd",
    "pull_tfhd",
    "push_tfdt",
    "pull_tfdt",
    "push_trun",
    "pull_trun",
    "push_mvhd",
    "pull_mvhd",
    "push_tkhd",
    "pull_tkhd",
    "push_mdhd",
    "pull_mdhd",
    "push_hdlr",
    "pull_hdlr",
    "push_trex",
    "pull_trex",
    "push_visual_sample_fields",
    "pull_visual_sample_fields",
    "push_audio_sample_fields",
    "pull_audio_sample_fields",
    "push_btrt",
    "pull_btrt",
    "push_esds",
    "pull_esds",
]

# -- brands -------------------------------------------------------------------

CMAF_HEADER_BRANDS = ("iso6", ("iso6", "cmfc", "mp41"))
"""``ftyp`` of a CMAF header: major ``iso6`` (ISOBMFF with tfdt, default-base-is-moof,
prft), compatible ``cmfc`` (CMAF track structural brand, 23000-19) and ``mp41``
(the ``mp4a``/``esds`` storage of 14496-14)."""

CMAF_SEGMENT_BRANDS = ("cmfs", ("cmfs", "msdh"))
"""``styp`` at the start of a CMAF segment: ``cmfs`` (CMAF segment) and ``msdh``
(DASH media segment: whole self-contained moof+mdat pairs). Not ``msix``: we
write no ``sidx``."""

# -- sample flags (14496-12 8.8.3.1) ------------------------------------------

SAMPLE_FLAGS_SYNC = 0x0200_0000
"""sample_depends_on = 2 (depends on no other sample), is_non_sync_sample = 0."""
SAMPLE_FLAGS_NON_SYNC = 0x0101_0000
"""sample_depends_on = 1 (depends on others), is_non_sync_sample = 1."""
_NON_SYNC_BIT = 0x0001_0000


def sample_flags(keyframe: bool) -> int:
    """The 32-bit sample_flags of a sync (key) or non-sync sample."""
    return SAMPLE_FLAGS_SYNC if keyframe else SAMPLE_FLAGS_NON_SYNC


def is_sync_sample(flags: int) -> bool:
    """True when sample_flags does not set sample_is_non_sync_sample."""
    return not flags & _NON_SYNC_BIT


# -- ftyp / styp ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileType:
    """Body of ``ftyp`` and ``styp``."""

    major_brand: str
    """Four-character major brand."""
    minor_version: int
    """Version of the major brand (informative)."""
    compatible_brands: tuple[str, ...]
    """Four-character brands the file conforms to."""


def push_file_type(buf: Buffer, box_type: str, value: FileType) -> None:
    """Write an ``ftyp`` or ``styp`` box (``box_type``)."""
    with buf.box(box_type):
        buf.push_fourcc(value.major_brand)
        buf.push_uint32(value.minor_version)
        for brand in value.compatible_brands:
            buf.push_fourcc(brand)


def pull_file_type(buf: Buffer) -> FileType:
    """Read an ``ftyp`` / ``styp`` body."""
    major = buf.pull_fourcc()
    minor = buf.pull_uint32()
    if buf.remaining % 4:
        raise BoxError(f"brand list of {buf.remaining} bytes is not a multiple of 4")
    brands = tuple(buf.pull_fourcc() for _ in range(buf.remaining // 4))
    return FileType(major, minor, brands)


# -- prft (14496-12 8.16.5) ---------------------------------------------------

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)."""

PRFT_ENCODER_INPUT = 0
"""prft flags 0: ntp_timestamp is when the frame whose presentation time is
media_time entered the encoder (our capture time: frames are encoded as captured)."""


def unix_us_to_ntp(unix_us: int) -> int:
    """Unix microseconds to a 64-bit NTP timestamp (32.32 fixed point since 1900).

    Seconds wrap modulo 2**32 (NTP era 1 from 2036, RFC 4330 section 3).
    """
    seconds, micros = divmod(unix_us, 1_000_000)
    fraction = ((micros << 32) + 500_000) // 1_000_000
    return (((seconds + NTP_UNIX_OFFSET) & UINT32_MAX) << 32) + fraction


def ntp_to_unix_us(ntp: int) -> int:
    """A 64-bit NTP timestamp to Unix microseconds (rounded to nearest).

    A seconds field with its top bit clear is read in NTP era 1 (2036-2104),
    per RFC 4330, so the mapping is exact for 1968-2104.
    """
    seconds = ntp >> 32
    if seconds < 0x8000_0000:
        seconds += 1 << 32
    micros = ((ntp & UINT32_MAX) * 1_000_000 + (1 << 31)) >> 32
    return (seconds - NTP_UNIX_OFFSET) * 1_000_000 + micros


@dataclass(frozen=True, slots=True)
class ProducerReferenceTime:
    """Body of ``prft``: a wall-clock anchor for a media time of one track."""

    track_id: int
    """reference_track_ID."""
    ntp_timestamp: int
    """UTC as 64-bit NTP (seconds since 1900 in the high 32 bits, fraction in the low)."""
    media_time: int
    """The same instant in ticks of the reference track (a presentation time)."""
    flags: int = PRFT_ENCODER_INPUT
    """FullBox flags: which production instant ntp_timestamp records."""

    @classmethod
    def from_unix_us(
        cls, track_id: int, unix_us: int, media_time: int, flags: int = PRFT_ENCODER_INPUT
    ) -> ProducerReferenceTime:
        """Build from Unix microseconds (e.g. ``Sample.capture_us``)."""
        return cls(track_id, unix_us_to_ntp(unix_us), media_time, flags)

    @property
    def unix_us(self) -> int:
        """ntp_timestamp as Unix microseconds."""
        return ntp_to_unix_us(self.ntp_timestamp)


def push_prft(buf: Buffer, value: ProducerReferenceTime) -> None:
    """Write ``prft`` version 1 (64-bit media_time)."""
    with buf.box("prft", version=1, flags=value.flags):
        buf.push_uint32(value.track_id)
        buf.push_uint64(value.ntp_timestamp)
        buf.push_uint64(value.media_time)


def pull_prft(buf: Buffer) -> ProducerReferenceTime:
    """Read a ``prft`` body, version 0 or 1."""
    version, flags = buf.pull_full_box_header()
    track_id = buf.pull_uint32()
    ntp = buf.pull_uint64()
    media_time = buf.pull_uint64() if version == 1 else buf.pull_uint32()
    return ProducerReferenceTime(track_id, ntp, media_time, flags)


# -- mfhd, tfdt ---------------------------------------------------------------


def push_mfhd(buf: Buffer, sequence_number: int) -> None:
    """Write ``mfhd``: the fragment's sequence number."""
    with buf.box("mfhd", version=0):
        buf.push_uint32(sequence_number)


def pull_mfhd(buf: Buffer) -> int:
    """Read an ``mfhd`` body: the sequence number."""
    buf.pull_full_box_header()
    return buf.pull_uint32()


def push_tfdt(buf: Buffer, base_media_decode_time: int) -> None:
    """Write ``tfdt`` version 1 (64-bit baseMediaDecodeTime)."""
    with buf.box("tfdt", version=1):
        buf.push_uint64(base_media_decode_time)


def pull_tfdt(buf: Buffer) -> int:
    """Read a ``tfdt`` body, version 0 or 1: baseMediaDecodeTime."""
    version, _ = buf.pull_full_box_header()
    return buf.pull_uint64() if version == 1 else buf.pull_uint32()


# -- tfhd (14496-12 8.8.7) ----------------------------------------------------

TFHD_BASE_DATA_OFFSET = 0x00_0001
TFHD_SAMPLE_DESCRIPTION_INDEX = 0x00_0002
TFHD_DEFAULT_SAMPLE_DURATION = 0x00_0008
TFHD_DEFAULT_SAMPLE_SIZE = 0x00_0010
TFHD_DEFAULT_SAMPLE_FLAGS = 0x00_0020
TFHD_DURATION_IS_EMPTY = 0x01_0000
TFHD_DEFAULT_BASE_IS_MOOF = 0x02_0000


@dataclass(frozen=True, slots=True)
class TrackFragmentHeader:
    """Body of ``tfhd``; optional fields are ``None`` when absent."""

    track_id: int
    """track_ID of the fragment's track."""
    default_base_is_moof: bool = True
    """Data offsets are relative to the first byte of the enclosing ``moof``."""
    duration_is_empty: bool = False
    """The fragment has no samples, only a duration."""
    base_data_offset: int | None = None
    """Explicit base for data offsets (absolute in the file)."""
    sample_description_index: int | None = None
    """Index into ``stsd`` (1-based), overriding ``trex``."""
    default_sample_duration: int | None = None
    """Duration of samples whose ``trun`` entry carries none."""
    default_sample_size: int | None = None
    """Size of samples whose ``trun`` entry carries none."""
    default_sample_flags: int | None = None
    """sample_flags of samples whose ``trun`` entry carries none."""

    @property
    def flags(self) -> int:
        """The tf_flags word implied by the present fields."""
        flags = TFHD_DEFAULT_BASE_IS_MOOF if self.default_base_is_moof else 0
        if self.duration_is_empty:
            flags |= TFHD_DURATION_IS_EMPTY
        for bit, field in (
            (TFHD_BASE_DATA_OFFSET, self.base_data_offset),
            (TFHD_SAMPLE_DESCRIPTION_INDEX, self.sample_description_index),
            (TFHD_DEFAULT_SAMPLE_DURATION, self.default_sample_duration),
            (TFHD_DEFAULT_SAMPLE_SIZE, self.default_sample_size),
            (TFHD_DEFAULT_SAMPLE_FLAGS, self.default_sample_flags),
        ):
            if field is not None:
                flags |= bit
        return flags


def push_tfhd(buf: Buffer, value: TrackFragmentHeader) -> None:
    """Write ``tfhd`` with the fields present in ``value``."""
    with buf.box("tfhd", version=0, flags=value.flags):
        buf.push_uint32(value.track_id)
        if value.base_data_offset is not None:
            buf.push_uint64(value.base_data_offset)
        for field in (
            value.sample_description_index,
            value.default_sample_duration,
            value.default_sample_size,
            value.default_sample_flags,
        ):
            if field is not None:
                buf.push_uint32(field)


def pull_tfhd(buf: Buffer) -> TrackFragmentHeader:
    """Read a ``tfhd`` body."""
    _, flags = buf.pull_full_box_header()
    track_id = buf.pull_uint32()
    base = buf.pull_uint64() if flags & TFHD_BASE_DATA_OFFSET else None

    def optional(bit: int) -> int | None:
        return buf.pull_uint32() if flags & bit else None

    sdi = optional(TFHD_SAMPLE_DESCRIPTION_INDEX)
    duration = optional(TFHD_DEFAULT_SAMPLE_DURATION)
    size = optional(TFHD_DEFAULT_SAMPLE_SIZE)
    sample_flags_ = optional(TFHD_DEFAULT_SAMPLE_FLAGS)
    return TrackFragmentHeader(
        track_id=track_id,
        default_base_is_moof=bool(flags & TFHD_DEFAULT_BASE_IS_MOOF),
        duration_is_empty=bool(flags & TFHD_DURATION_IS_EMPTY),
        base_data_offset=base,
        sample_description_index=sdi,
        default_sample_duration=duration,
        default_sample_size=size,
        default_sample_flags=sample_flags_,
    )


# -- trun (14496-12 8.8.8) ----------------------------------------------------

TRUN_DATA_OFFSET = 0x00_0001
TRUN_FIRST_SAMPLE_FLAGS = 0x00_0004
TRUN_SAMPLE_DURATION = 0x00_0100
TRUN_SAMPLE_SIZE = 0x00_0200
TRUN_SAMPLE_FLAGS = 0x00_0400
TRUN_SAMPLE_CTS_OFFSET = 0x00_0800


@dataclass(frozen=True, slots=True)
class TrackRun:
    """Body of ``trun``, stored by column; a column is ``None`` when absent."""

    sample_count: int
    """Number of samples in the run."""
    version: int = 0
    """0: unsigned composition offsets; 1: signed."""
    data_offset: int | None = None
    """Offset of the run's first sample data from the base data offset (signed)."""
    first_sample_flags: int | None = None
    """sample_flags of the first sample only (used without the flags column)."""
    durations: tuple[int, ...] | None = None
    """Per-sample durations in ticks."""
    sizes: tuple[int, ...] | None = None
    """Per-sample sizes in bytes."""
    sample_flags: tuple[int, ...] | None = None
    """Per-sample sample_flags words."""
    cts_offsets: tuple[int, ...] | None = None
    """Per-sample composition offsets (pts - dts) in ticks."""

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise BoxError(f"trun version {self.version} unsupported")
        for name in ("durations", "sizes", "sample_flags", "cts_offsets"):
            column = getattr(self, name)
            if column is not None and len(column) != self.sample_count:
                raise BoxError(f"trun {name} has {len(column)} entries for {self.sample_count}")

    @property
    def flags(self) -> int:
        """The tr_flags word implied by the present fields."""
        flags = 0
        for bit, field in (
            (TRUN_DATA_OFFSET, self.data_offset),
            (TRUN_FIRST_SAMPLE_FLAGS, self.first_sample_flags),
            (TRUN_SAMPLE_DURATION, self.durations),
            (TRUN_SAMPLE_SIZE, self.sizes),
            (TRUN_SAMPLE_FLAGS, self.sample_flags),
            (TRUN_SAMPLE_CTS_OFFSET, self.cts_offsets),
        ):
            if field is not None:
                flags |= bit
        return flags

    def _columns(self) -> list[tuple[int, ...]]:
        return [
            c
            for c in (self.durations, self.sizes, self.sample_flags, self.cts_offsets)
            if c is not None
        ]


def push_trun(buf: Buffer, value: TrackRun) -> int | None:
    """Write ``trun``; return the buffer offset of its data_offset field (to back-patch)."""
    data_offset_at: int | None = None
    with buf.box("trun", version=value.version, flags=value.flags):
        buf.push_uint32(value.sample_count)
        if value.data_offset is not None:
            data_offset_at = buf.tell()
            buf.push_int32(value.data_offset)
        if value.first_sample_flags is not None:
            buf.push_uint32(value.first_sample_flags)
        columns = value._columns()
        if value.cts_offsets is not None:
            lo, hi = (-(1 << 31), 1 << 31) if value.version == 1 else (0, 1 << 32)
            if any(not lo <= c < hi for c in value.cts_offsets):
                raise BoxError(f"composition offset outside [{lo}, {hi}) for trun v{value.version}")
            columns[-1] = tuple(c & UINT32_MAX for c in value.cts_offsets)
        if columns:
            values = [v for row in zip(*columns, strict=True) for v in row]
            buf.push_struct(f">{len(values)}I", *values)
    return data_offset_at


def pull_trun(buf: Buffer) -> TrackRun:
    """Read a ``trun`` body."""
    version, flags = buf.pull_full_box_header()
    count = buf.pull_uint32()
    data_offset = buf.pull_int32() if flags & TRUN_DATA_OFFSET else None
    first_flags = buf.pull_uint32() if flags & TRUN_FIRST_SAMPLE_FLAGS else None
    present = [
        bool(flags & bit)
        for bit in (
            TRUN_SAMPLE_DURATION,
            TRUN_SAMPLE_SIZE,
            TRUN_SAMPLE_FLAGS,
            TRUN_SAMPLE_CTS_OFFSET,
        )
    ]
    width = sum(present)
    if count * width * 4 > buf.remaining:
        raise BoxError(f"trun declares {count} samples but holds {buf.remaining} bytes of entries")
    values = buf.pull_struct(f">{count * width}I") if width else ()
    columns: list[tuple[int, ...] | None] = []
    index = 0
    for is_present in present:
        if is_present:
            columns.append(values[index::width])
            index += 1
        else:
            columns.append(None)
    cts = columns[3]
    if cts is not None and version == 1:
        cts = tuple(c - (1 << 32) if c >= 1 << 31 else c for c in cts)
    return TrackRun(
        sample_count=count,
        version=version,  # __post_init__ rejects versions other than 0 and 1
        data_offset=data_offset,
        first_sample_flags=first_flags,
        durations=columns[0],
        sizes=columns[1],
        sample_flags=columns[2],
        cts_offsets=cts,
    )


# -- movie header boxes ---------------------------------------------------------

_UNITY_MATRIX = (0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000)


def push_mvhd(buf: Buffer, timescale: int, next_track_id: int) -> None:
    """Write ``mvhd`` version 0 with zero times and duration (fragmented movie)."""
    with buf.box("mvhd", version=0):
        buf.push_struct(">IIII", 0, 0, timescale, 0)  # creation, modification, timescale, duration
        buf.push_uint32(0x0001_0000)  # rate 1.0
        buf.push_uint16(0x0100)  # volume 1.0
        buf.push_zeros(2 + 8)  # reserved
        buf.push_struct(">9I", *_UNITY_MATRIX)
        buf.push_zeros(24)  # pre_defined
        buf.push_uint32(next_track_id)


def pull_mvhd(buf: Buffer) -> tuple[int, int]:
    """Read an ``mvhd`` body: ``(timescale, next_track_ID)``."""
    version, _ = buf.pull_full_box_header()
    buf.pull_bytes(16 if version == 1 else 8)  # creation, modification
    timescale = buf.pull_uint32()
    buf.pull_bytes((8 if version == 1 else 4) + 4 + 2 + 10 + 36 + 24)
    return timescale, buf.pull_uint32()


def push_tkhd(buf: Buffer, track_id: int, width: int, height: int, audio: bool) -> None:
    """Write ``tkhd`` version 0, flags enabled|in_movie; width/height as 16.16."""
    with buf.box("tkhd", version=0, flags=0x000003):
        buf.push_struct(">IIIII", 0, 0, track_id, 0, 0)  # times, track_ID, reserved, duration
        buf.push_zeros(8)  # reserved
        buf.push_struct(">HHHH", 0, 0, 0x0100 if audio else 0, 0)  # layer, group, volume, res.
        buf.push_struct(">9I", *_UNITY_MATRIX)
        buf.push_uint32(width << 16)
        buf.push_uint32(height << 16)


def pull_tkhd(buf: Buffer) -> tuple[int, int, int]:
    """Read a ``tkhd`` body: ``(track_ID, width, height)``, sizes in whole pixels."""
    version, _ = buf.pull_full_box_header()
    buf.pull_bytes(16 if version == 1 else 8)
    track_id = buf.pull_uint32()
    buf.pull_bytes(4 + (8 if version == 1 else 4) + 8 + 8 + 36)
    width = buf.pull_uint32()
    height = buf.pull_uint32()
    return track_id, width >> 16, height >> 16


def _pack_language(code: str) -> int:
    if len(code) != 3 or not all("a" <= ch <= "z" for ch in code):
        raise BoxError(f"language must be 3 lowercase letters (ISO 639-2/T), got {code!r}")
    return ((ord(code[0]) - 0x60) << 10) | ((ord(code[1]) - 0x60) << 5) | (ord(code[2]) - 0x60)


def push_mdhd(buf: Buffer, timescale: int, language: str = "und") -> None:
    """Write ``mdhd`` version 0 with zero times and duration."""
    with buf.box("mdhd", version=0):
        buf.push_struct(">IIII", 0, 0, timescale, 0)
        buf.push_uint16(_pack_language(language))
        buf.push_uint16(0)  # pre_defined


def pull_mdhd(buf: Buffer) -> tuple[int, str]:
    """Read an ``mdhd`` body: ``(timescale, language)``."""
    version, _ = buf.pull_full_box_header()
    buf.pull_bytes(16 if version == 1 else 8)
    timescale = buf.pull_uint32()
    buf.pull_bytes(8 if version == 1 else 4)
    packed = buf.pull_uint16()
    language = "".join(chr(((packed >> shift) & 0x1F) + 0x60) for shift in (10, 5, 0))
    return timescale, language


def push_hdlr(buf: Buffer, handler_type: str, name: str) -> None:
    """Write ``hdlr`` (``vide`` / ``soun``) with a NUL-terminated UTF-8 name."""
    with buf.box("hdlr", version=0):
        buf.push_uint32(0)  # pre_defined
        buf.push_fourcc(handler_type)
        buf.push_zeros(12)  # reserved
        buf.push_bytes(name.encode() + b"\0")


def pull_hdlr(buf: Buffer) -> tuple[str, str]:
    """Read an ``hdlr`` body: ``(handler_type, name)``."""
    buf.pull_full_box_header()
    buf.pull_uint32()
    handler = buf.pull_fourcc()
    buf.pull_bytes(12)
    name = buf.pull_bytes(buf.remaining).split(b"\0", 1)[0]
    return handler, name.decode("utf-8", "replace")


def push_trex(buf: Buffer, track_id: int) -> None:
    """Write ``trex`` with description index 1 and zero defaults (every ``trun`` is explicit)."""
    with buf.box("trex", version=0):
        buf.push_struct(">IIIII", track_id, 1, 0, 0, 0)


def pull_trex(buf: Buffer) -> tuple[int, int, int, int, int]:
    """Read a ``trex`` body: ``(track_ID, description index, duration, size, flags)``."""
    buf.pull_full_box_header()
    track_id, sdi, duration, size, flags = buf.pull_struct(">IIIII")
    return track_id, sdi, duration, size, flags


# -- sample entries -------------------------------------------------------------

VISUAL_SAMPLE_FIELDS = 78
"""Bytes of SampleEntry + VisualSampleEntry fields before the child boxes."""
AUDIO_SAMPLE_FIELDS = 28
"""Bytes of SampleEntry + AudioSampleEntry (v0) fields before the child boxes."""


def push_visual_sample_fields(buf: Buffer, width: int, height: int) -> None:
    """Write the 78 fixed bytes of a VisualSampleEntry (``avc1`` body before ``avcC``)."""
    buf.push_zeros(6)  # reserved
    buf.push_uint16(1)  # data_reference_index
    buf.push_zeros(16)  # pre_defined, reserved, pre_defined[3]
    buf.push_struct(">HHII", width, height, 0x0048_0000, 0x0048_0000)  # 72 dpi
    buf.push_uint32(0)  # reserved
    buf.push_uint16(1)  # frame_count
    buf.push_zeros(32)  # compressorname: empty Pascal string
    buf.push_uint16(0x0018)  # depth: colour, no alpha
    buf.push_uint16(0xFFFF)  # pre_defined = -1


def pull_visual_sample_fields(buf: Buffer) -> tuple[int, int]:
    """Read the fixed VisualSampleEntry fields: ``(width, height)``."""
    buf.pull_bytes(24)
    width = buf.pull_uint16()
    height = buf.pull_uint16()
    buf.pull_bytes(VISUAL_SAMPLE_FIELDS - 28)
    return width, height


def push_audio_sample_fields(buf: Buffer, channels: int, sample_rate: int) -> None:
    """Write the 28 fixed bytes of an AudioSampleEntry v0 (``mp4a`` body before ``esds``).

    samplerate is 16.16; rates above 65535 Hz are written as 0 (the decoder uses
    the AudioSpecificConfig).
    """
    buf.push_zeros(6)
    buf.push_uint16(1)  # data_reference_index
    buf.push_zeros(8)  # reserved
    buf.push_struct(">HHHH", channels, 16, 0, 0)  # channelcount, samplesize, pre_def, res.
    buf.push_uint32(sample_rate << 16 if sample_rate <= 0xFFFF else 0)


def pull_audio_sample_fields(buf: Buffer) -> tuple[int, int]:
    """Read the fixed AudioSampleEntry fields: ``(channels, sample_rate)``."""
    buf.pull_bytes(16)
    channels = buf.pull_uint16()
    buf.pull_bytes(6)
    return channels, buf.pull_uint32() >> 16


def push_btrt(buf: Buffer, buffer_size: int, max_bitrate: int, avg_bitrate: int) -> None:
    """Write ``btrt`` (BitRateBox, 14496-12 8.5.2.2)."""
    with buf.box("btrt"):
        buf.push_struct(">III", buffer_size, max_bitrate, avg_bitrate)


def pull_btrt(buf: Buffer) -> tuple[int, int, int]:
    """Read a ``btrt`` body: ``(bufferSizeDB, maxBitrate, avgBitrate)``."""
    size, max_rate, avg_rate = buf.pull_struct(">III")
    return size, max_rate, avg_rate


# -- esds (14496-14 5.6, descriptors of 14496-1 7.2.6) ------------------------

_ES_DESCR_TAG = 0x03
_DECODER_CONFIG_TAG = 0x04
_DECODER_SPECIFIC_TAG = 0x05
_SL_CONFIG_TAG = 0x06
_AUDIO_STREAM = 0x05
_AAC_OBJECT_TYPES = (0x40, 0x66, 0x67, 0x68)  # MPEG-4 audio; MPEG-2 AAC Main/LC/SSR


@dataclass(frozen=True, slots=True)
class ElementaryStreamDescriptor:
    """The parts of an ``esds`` ES_Descriptor an AAC track needs."""

    audio_specific_config: bytes
    """DecoderSpecificInfo: the AudioSpecificConfig (14496-3 1.6.2.1)."""
    object_type_indication: int = 0x40
    """0x40: Audio ISO/IEC 14496-3."""
    buffer_size: int = 0
    """bufferSizeDB: decoder buffer in bytes (24 bits)."""
    max_bitrate: int = 0
    """Peak bit rate in bit/s (0 unknown)."""
    avg_bitrate: int = 0
    """Average bit rate in bit/s (0 for variable / unknown)."""


def _descriptor(tag: int, body: bytes) -> bytes:
    """A descriptor: tag, expandable size (7 bits a byte, minimal form), body."""
    size = len(body)
    groups = [size & 0x7F]
    size >>= 7
    while size:
        groups.append(0x80 | (size & 0x7F))
        size >>= 7
    if len(groups) > 4:
        raise BoxError("descriptor larger than 2**28 bytes")
    return bytes([tag, *reversed(groups)]) + body


def push_esds(buf: Buffer, value: ElementaryStreamDescriptor) -> None:
    """Write ``esds``: ES_Descriptor(DecoderConfigDescriptor(DecoderSpecificInfo), SLConfig)."""
    if not 0 <= value.buffer_size <= 0xFF_FFFF:
        raise BoxError(f"bufferSizeDB {value.buffer_size} does not fit 24 bits")
    config = Buffer()
    config.push_uint8(value.object_type_indication)
    config.push_uint8((_AUDIO_STREAM << 2) | 0x01)  # streamType, upStream=0, reserved=1
    config.push_uint24(value.buffer_size)
    config.push_uint32(value.max_bitrate)
    config.push_uint32(value.avg_bitrate)
    config.push_bytes(_descriptor(_DECODER_SPECIFIC_TAG, value.audio_specific_config))
    es_body = (
        b"\x00\x00"  # ES_ID: 0 as stored in a file (14496-14 3.1.2)
        + b"\x00"  # no dependsOn / URL / OCR stream, priority 0
        + _descriptor(_DECODER_CONFIG_TAG, config.data)
        + _descriptor(_SL_CONFIG_TAG, b"\x02")  # predefined: reserved for MP4 files
    )
    with buf.box("esds", version=0):
        buf.push_bytes(_descriptor(_ES_DESCR_TAG, es_body))


def _pull_descriptor(buf: Buffer) -> tuple[int, Buffer]:
    tag = buf.pull_uint8()
    size = 0
    for _ in range(4):
        byte = buf.pull_uint8()
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    else:
        raise BoxError("descriptor size longer than 4 bytes")
    return tag, Buffer(buf.pull_bytes(size))


def pull_esds(buf: Buffer) -> ElementaryStreamDescriptor:
    """Read an ``esds`` body (AAC only)."""
    buf.pull_full_box_header()
    tag, es = _pull_descriptor(buf)
    if tag != _ES_DESCR_TAG:
        raise BoxError(f"esds starts with descriptor tag {tag:#x}, not ES_Descriptor")
    es.pull_uint16()  # ES_ID
    es_flags = es.pull_uint8()
    if es_flags & 0x80:
        es.pull_uint16()  # dependsOn_ES_ID
    if es_flags & 0x40:
        es.pull_bytes(es.pull_uint8())  # URL
    if es_flags & 0x20:
        es.pull_uint16()  # OCR_ES_Id
    while not es.eof():
        tag, config = _pull_descriptor(es)
        if tag != _DECODER_CONFIG_TAG:
            continue
        oti = config.pull_uint8()
        if oti not in _AAC_OBJECT_TYPES:
            raise BoxError(f"unsupported esds objectTypeIndication {oti:#x} (AAC only)")
        config.pull_uint8()  # streamType etc.
        buffer_size = config.pull_uint24()
        max_rate = config.pull_uint32()
        avg_rate = config.pull_uint32()
        while not config.eof():
            tag, info = _pull_descriptor(config)
            if tag == _DECODER_SPECIFIC_TAG:
                return ElementaryStreamDescriptor(info.data, oti, buffer_size, max_rate, avg_rate)
        raise BoxError("esds has no DecoderSpecificInfo (AudioSpecificConfig)")
    raise BoxError("esds has no DecoderConfigDescriptor")
