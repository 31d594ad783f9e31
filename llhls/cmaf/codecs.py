"""Codec configuration helpers: H.264 Annex B <-> AVCC, avcC records, codec strings.

Pure functions over bytes. Encoders (libx264 through PyAV) emit Annex B
byte streams (start codes); CMAF wants 4-byte length prefixes and the
parameter sets in an ``avcC`` record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from llhls.errors import BoxError

__all__ = [
    "NAL_SPS",
    "NAL_PPS",
    "NAL_IDR",
    "NAL_AUD",
    "NAL_SEI",
    "split_annexb",
    "nal_type",
    "to_avcc",
    "split_avcc",
    "avc_decoder_config",
    "parse_avc_decoder_config",
    "avc_codec_string",
    "aac_codec_string",
    "aac_audio_specific_config",
    "AAC_SAMPLE_RATES",
    "parse_aac_audio_specific_config",
]

NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream into NAL units (start codes removed)."""
    nals: list[bytes] = []
    i = 0
    n = len(data)
    start = -1
    while i + 2 < n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            if start >= 0:
                end = i
                # a 4-byte start code leaves one zero behind
                while end > start and data[end - 1] == 0:
                    end -= 1
                nals.append(data[start:end])
            i += 3
            start = i
        else:
            i += 1
    if start < 0:
        raise BoxError("no Annex B start code in H.264 data")
    if start < n:
        nals.append(data[start:])
    return [nal for nal in nals if nal]


def nal_type(nal: bytes) -> int:
    """The nal_unit_type of one NAL unit."""
    if not nal:
        raise BoxError("empty NAL unit")
    return nal[0] & 0x1F


def to_avcc(nals: Iterable[bytes]) -> bytes:
    """Join NAL units with 4-byte big-endian length prefixes."""
    return b"".join(struct.pack(">I", len(nal)) + nal for nal in nals)


def split_avcc(data: bytes) -> list[bytes]:
    """Split a length-prefixed (4-byte) sample into NAL units."""
    nals: list[bytes] = []
    i = 0
    while i < len(data):
        if i + 4 > len(data):
            raise BoxError(f"truncated NAL length at offset {i}")
        (size,) = struct.unpack_from(">I", data, i)
        i += 4
        if size == 0 or i + size > len(data):
            raise BoxError(f"NAL length {size} at offset {i - 4} overruns the sample")
        nals.append(data[i : i + size])
        i += size
    return nals


def avc_decoder_config(sps: list[bytes], pps: list[bytes]) -> bytes:
    """Build an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1)."""
    if not sps or not pps:
        raise BoxError("an avcC record needs at least one SPS and one PPS")
    first = sps[0]
    if len(first) < 4:
        raise BoxError("SPS too short")
    out = bytearray([1, first[1], first[2], first[3], 0xFC | 3, 0xE0 | len(sps)])
    for nal in sps:
        out += struct.pack(">H", len(nal)) + nal
    out.append(len(pps))
    for nal in pps:
        out += struct.pack(">H", len(nal)) + nal
    if first[1] in (100, 110, 122, 144):
        # High profiles: chroma_format 4:2:0, 8-bit, no SPS extensions.
        out += bytes([0xFC | 1, 0xF8, 0xF8, 0])
    return bytes(out)


def parse_avc_decoder_config(record: bytes) -> tuple[list[bytes], list[bytes]]:
    """Return (SPS list, PPS list) from an AVCDecoderConfigurationRecord."""
    try:
        if record[0] != 1:
            raise BoxError(f"avcC version {record[0]} unsupported")
        if record[4] & 3 != 3:
            raise BoxError("avcC NAL length size must be 4")
        i = 5
        sps: list[bytes] = []
        for _ in range(record[i] & 0x1F):
            (size,) = struct.unpack_from(">H", record, i + 1)
            sps.append(record[i + 3 : i + 3 + size])
            i += 2 + size
        i += 1
        pps: list[bytes] = []
        count = record[i]
        i += 1
        for _ in range(count):
            (size,) = struct.unpack_from(">H", record, i)
            pps.append(record[i + 2 : i + 2 + size])
            i += 2 + size
    except (IndexError, struct.error) as exc:
        raise BoxError("truncated avcC record") from exc
    return sps, pps


def avc_codec_string(sps: bytes) -> str:
    """RFC 6381 ``avc1.PPCCLL`` from an SPS NAL unit."""
    if len(sps) < 4 or nal_type(sps) != NAL_SPS:
        raise BoxError("not an SPS NAL unit")
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"


AAC_SAMPLE_RATES = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350
)  # fmt: skip
"""samplingFrequencyIndex 0..12 of an AudioSpecificConfig (14496-3 1.6.3.4)."""


def aac_audio_specific_config(object_type: int, sample_rate: int, channels: int) -> bytes:
    """A 2-byte AudioSpecificConfig for AAC (ISO/IEC 14496-3 1.6.2.1)."""
    if sample_rate not in AAC_SAMPLE_RATES:
        raise BoxError(f"AAC sample rate {sample_rate} has no frequency index")
    index = AAC_SAMPLE_RATES.index(sample_rate)
    value = (object_type << 11) | (index << 7) | (channels << 3)
    return struct.pack(">H", value)


def aac_codec_string(audio_specific_config: bytes) -> str:
    """RFC 6381 ``mp4a.40.N`` from an AudioSpecificConfig."""
    if not audio_specific_config:
        raise BoxError("empty AudioSpecificConfig")
    object_type = audio_specific_config[0] >> 3
    return f"mp4a.40.{object_type}"


def parse_aac_audio_specific_config(config: bytes) -> tuple[int, int, int]:
    """``(audioObjectType, sampling frequency, channelConfiguration)`` of an AudioSpecificConfig.

    Handles the escaped object type (31) and the explicit 24-bit frequency (index 15).
    """
    bits = int.from_bytes(config[:7].ljust(7, b"\0"), "big")
    total = 56
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        pos += n
        return (bits >> (total - pos)) & ((1 << n) - 1)

    object_type = take(5)
    if object_type == 31:
        object_type = 32 + take(6)
    index = take(4)
    if index == 15:
        rate = take(24)
    elif index < len(AAC_SAMPLE_RATES):
        rate = AAC_SAMPLE_RATES[index]
    else:
        raise BoxError(f"reserved AAC sampling frequency index {index}")
    channels = take(4)
    if len(config) * 8 < pos:
        raise BoxError(f"AudioSpecificConfig of {len(config)} bytes is truncated")
    return object_type, rate, channels
