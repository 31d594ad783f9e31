"""One byte buffer for every ISO-BMFF box: paired ``push_*`` / ``pull_*``.

A :class:`Buffer` has a single cursor. ``pull_*`` reads big-endian fields at
the cursor and raises :class:`~llhls.errors.BoxError` when the data runs out;
``push_*`` writes at the cursor, growing the buffer when the cursor is at its
end. :meth:`Buffer.box` writes a box header and back-patches its size when the
``with`` block ends, so box writers never compute sizes by hand::

    buf = Buffer()
    with buf.box("mfhd", version=0):
        buf.push_uint32(sequence_number)
    data = buf.data
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from llhls.errors import BoxError

__all__ = ["Buffer", "UINT32_MAX", "UINT64_MAX"]

UINT32_MAX = 0xFFFF_FFFF
"""Largest value of a 32-bit box field (also the largest 32-bit box size)."""
UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF
"""Largest value of a 64-bit box field."""

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


class Buffer:
    """A growable byte buffer with one read/write cursor.

    ``Buffer(data)`` starts at offset 0 over ``data`` (for reading); ``Buffer()``
    starts empty (for writing). Read-only input is only copied if it is written.
    """

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._data: bytes | bytearray = data if isinstance(data, bytes | bytearray) else bytes(data)
        self._pos = 0

    # -- cursor -------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """The whole content (independent of the cursor)."""
        return bytes(self._data)

    def data_slice(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the content; BoxError when out of range."""
        if not 0 <= start <= end <= len(self._data):
            raise BoxError(f"slice [{start}, {end}) outside a buffer of {len(self._data)} bytes")
        return bytes(self._data[start:end])

    def __len__(self) -> int:
        return len(self._data)

    def tell(self) -> int:
        """The cursor offset."""
        return self._pos

    def seek(self, pos: int) -> None:
        """Move the cursor to ``pos`` (0 .. len)."""
        if not 0 <= pos <= len(self._data):
            raise BoxError(f"seek to {pos} outside a buffer of {len(self._data)} bytes")
        self._pos = pos

    @property
    def remaining(self) -> int:
        """Bytes between the cursor and the end."""
        return len(self._data) - self._pos

    def eof(self) -> bool:
        """True when the cursor is at the end."""
        return self._pos >= len(self._data)

    # -- pull ---------------------------------------------------------------

    def _take(self, n: int) -> int:
        """Advance the cursor by ``n`` bytes and return the old offset."""
        pos = self._pos
        if n < 0 or pos + n > len(self._data):
            raise BoxError(
                f"truncated data: need {n} bytes at offset {pos}, only {len(self._data) - pos} left"
            )
        self._pos = pos + n
        return pos

    def pull_bytes(self, length: int) -> bytes:
        """Read ``length`` raw bytes."""
        pos = self._take(length)
        return bytes(self._data[pos : pos + length])

    def pull_uint8(self) -> int:
        """Read an unsigned 8-bit integer."""
        return self._data[self._take(1)]

    def pull_uint16(self) -> int:
        """Read a big-endian unsigned 16-bit integer."""
        return int(_U16.unpack_from(self._data, self._take(2))[0])

    def pull_uint24(self) -> int:
        """Read a big-endian unsigned 24-bit integer (FullBox flags, descriptor fields)."""
        pos = self._take(3)
        return int.from_bytes(self._data[pos : pos + 3], "big")

    def pull_uint32(self) -> int:
        """Read a big-endian unsigned 32-bit integer."""
        return int(_U32.unpack_from(self._data, self._take(4))[0])

    def pull_int32(self) -> int:
        """Read a big-endian two's-complement 32-bit integer."""
        return int(_I32.unpack_from(self._data, self._take(4))[0])

    def pull_uint64(self) -> int:
        """Read a big-endian unsigned 64-bit integer."""
        return int(_U64.unpack_from(self._data, self._take(8))[0])

    def pull_int64(self) -> int:
        """Read a big-endian two's-complement 64-bit integer."""
        return int(_I64.unpack_from(self._data, self._take(8))[0])

    def pull_fourcc(self) -> str:
        """Read a four-character code (box type, brand, handler) as text."""
        return self.pull_bytes(4).decode("latin-1")

    def pull_struct(self, fmt: str) -> tuple[int, ...]:
        """Read the integers of a :mod:`struct` format (e.g. ``">12I"``) in one call."""
        size = struct.calcsize(fmt)
        return tuple(int(v) for v in struct.unpack_from(fmt, self._data, self._take(size)))

    def pull_full_box_header(self) -> tuple[int, int]:
        """Read a FullBox ``(version, flags)``: 8 + 24 bits."""
        word = self.pull_uint32()
        return word >> 24, word & 0xFF_FFFF

    # -- push ---------------------------------------------------------------

    def _writable(self) -> bytearray:
        data = self._data
        if isinstance(data, bytearray):
            return data
        self._data = out = bytearray(data)
        return out

    def push_bytes(self, value: bytes | bytearray | memoryview) -> None:
        """Write raw bytes."""
        data = self._writable()
        pos = self._pos
        end = pos + len(value)
        if pos == len(data):
            data += value
        else:
            data[pos:end] = value
        self._pos = end

    def _push_struct(self, st: struct.Struct, value: int, what: str) -> None:
        try:
            packed = st.pack(value)
        except struct.error as exc:
            raise BoxError(f"{value} does not fit a {what} box field") from exc
        self.push_bytes(packed)

    def push_uint8(self, value: int) -> None:
        """Write an unsigned 8-bit integer."""
        if not 0 <= value <= 0xFF:
            raise BoxError(f"{value} does not fit an 8-bit box field")
        self.push_bytes(bytes((value,)))

    def push_uint16(self, value: int) -> None:
        """Write a big-endian unsigned 16-bit integer."""
        self._push_struct(_U16, value, "16-bit")

    def push_uint24(self, value: int) -> None:
        """Write a big-endian unsigned 24-bit integer."""
        if not 0 <= value <= 0xFF_FFFF:
            raise BoxError(f"{value} does not fit a 24-bit box field")
        self.push_bytes(value.to_bytes(3, "big"))

    def push_uint32(self, value: int) -> None:
        """Write a big-endian unsigned 32-bit integer."""
        self._push_struct(_U32, value, "32-bit")

    def push_int32(self, value: int) -> None:
        """Write a big-endian two's-complement 32-bit integer."""
        self._push_struct(_I32, value, "signed 32-bit")

    def push_uint64(self, value: int) -> None:
        """Write a big-endian unsigned 64-bit integer."""
        self._push_struct(_U64, value, "64-bit")

    def push_int64(self, value: int) -> None:
        """Write a big-endian two's-complement 64-bit integer."""
        self._push_struct(_I64, value, "signed 64-bit")

    def push_fourcc(self, value: str) -> None:
        """Write a four-character code."""
        raw = value.encode("latin-1")
        if len(raw) != 4:
            raise BoxError(f"a four-character code needs 4 characters, got {value!r}")
        self.push_bytes(raw)

    def push_struct(self, fmt: str, *values: int) -> None:
        """Write integers with a :mod:`struct` format in one call (pair of :meth:`pull_struct`)."""
        try:
            packed = struct.pack(fmt, *values)
        except struct.error as exc:
            raise BoxError(f"values do not fit the box fields {fmt!r}: {exc}") from exc
        self.push_bytes(packed)

    def push_zeros(self, count: int) -> None:
        """Write ``count`` zero bytes (reserved fields)."""
        self.push_bytes(bytes(count))

    def push_full_box_header(self, version: int, flags: int) -> None:
        """Write a FullBox ``(version, flags)``: 8 + 24 bits."""
        if not 0 <= version <= 0xFF or not 0 <= flags <= 0xFF_FFFF:
            raise BoxError(f"bad FullBox version {version} / flags {flags:#x}")
        self.push_uint32((version << 24) | flags)

    @contextmanager
    def box(self, box_type: str, version: int | None = None, flags: int = 0) -> Iterator[int]:
        """Write a box around the ``with`` body and back-patch its 32-bit size.

        With ``version`` set, the box is a FullBox and the version/flags word
        follows the type. Yields the offset of the box's first byte (useful to
        compute offsets relative to the box, like ``trun``'s data_offset).
        """
        start = self._pos
        self.push_uint32(0)
        self.push_fourcc(box_type)
        if version is not None:
            self.push_full_box_header(version, flags)
        yield start
        end = self._pos
        size = end - start
        if size > UINT32_MAX:
            raise BoxError(f"box {box_type!r} of {size} bytes exceeds the 32-bit size field")
        _U32.pack_into(self._writable(), start, size)
