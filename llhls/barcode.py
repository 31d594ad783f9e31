"""The clock barcode: capture UTC milliseconds burned into a frame's top band.

``testsrc`` draws it into every frame; the player (and the demo page, in
JavaScript) reads it back from decoded pixels, so glass-to-glass latency is
measured from the picture itself. The format (docs/contracts-dev.md):

* the band is rows ``[0, band_height(H))`` with ``band_height(H) = round(H/10)``
  (halves rounded up, like JavaScript's ``Math.round``), split into 64 cells;
  cell ``i`` spans columns ``[floor(i*W/64), floor((i+1)*W/64))``;
* a white cell (RGB 255, luma ~235) is bit 1, a black one (RGB 0, luma ~16) bit 0;
* cells 0..1 ``1 0`` start marker; cells 2..49 the 48-bit ms value, MSB first;
  cells 50..57 the CRC-8 (poly 0x07, init 0, no reflection, no final xor) of
  those 48 bits as 6 big-endian bytes; cells 58..63 ``1 0 1 0 1 0`` end marker.

Decoding takes the mean luma of each cell's central region (the middle half in
x and in y of the band), thresholds halfway between the means of the marker
cells known white and known black, and checks both markers and the CRC. It
returns ``None`` rather than a value it is not sure of.

Pure functions over numpy arrays; no I/O.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "CELLS",
    "TIME_BITS",
    "CRC_BITS",
    "START_MARKER",
    "END_MARKER",
    "TIME_FIRST_CELL",
    "CRC_FIRST_CELL",
    "END_FIRST_CELL",
    "MAX_MS",
    "MIN_WIDTH",
    "MIN_CONTRAST",
    "band_height",
    "cell_bounds",
    "crc8",
    "cell_bits",
    "encode_into",
    "decode_luma",
    "decode_rgb",
]

CELLS = 64
"""Number of cells across the band."""
TIME_BITS = 48
"""Bits of the millisecond value."""
CRC_BITS = 8
"""Bits of the CRC-8."""
START_MARKER: tuple[int, ...] = (1, 0)
"""Cells 0..1."""
END_MARKER: tuple[int, ...] = (1, 0, 1, 0, 1, 0)
"""Cells 58..63."""
TIME_FIRST_CELL = len(START_MARKER)
"""Index of the time's most significant bit (2)."""
CRC_FIRST_CELL = TIME_FIRST_CELL + TIME_BITS
"""Index of the CRC's most significant bit (50)."""
END_FIRST_CELL = CRC_FIRST_CELL + CRC_BITS
"""Index of the first end-marker cell (58)."""
MAX_MS = (1 << TIME_BITS) - 1
"""Largest encodable millisecond value."""
MIN_WIDTH = CELLS
"""Narrowest frame that can carry the barcode (one column per cell)."""
MIN_CONTRAST = 48.0
"""Decode gives up when white and black markers differ by less luma than this."""

_MARKER_CELLS = np.array(
    [0, 1] + list(range(END_FIRST_CELL, CELLS)),
    dtype=np.intp,
)
_MARKER_BITS = np.array(START_MARKER + END_MARKER, dtype=np.uint8)
_WHITE_MARKERS = _MARKER_CELLS[_MARKER_BITS == 1]
_BLACK_MARKERS = _MARKER_CELLS[_MARKER_BITS == 0]
_MARGIN = 0.2
"""A cell closer to the threshold than this fraction of the contrast is unreadable."""


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8_TABLE = _crc8_table()


def crc8(data: bytes) -> int:
    """CRC-8 with polynomial 0x07, init 0x00, no reflection, no final xor."""
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


def band_height(height: int) -> int:
    """Rows of the band for a frame ``height`` rows tall: round(H/10), halves up."""
    return (height + 5) // 10


def cell_bounds(width: int) -> npt.NDArray[np.intp]:
    """The 65 column boundaries: cell ``i`` spans ``[b[i], b[i+1])``."""
    return (np.arange(CELLS + 1, dtype=np.intp) * width) // CELLS


def cell_bits(utc_ms: int) -> npt.NDArray[np.uint8]:
    """The 64 cell values (0 or 1) encoding ``utc_ms``."""
    if not 0 <= utc_ms <= MAX_MS:
        raise ValueError(f"barcode time must be in [0, 2**48), got {utc_ms}")
    payload = utc_ms.to_bytes(6, "big")
    value = (utc_ms << CRC_BITS) | crc8(payload)
    shifts = np.arange(TIME_BITS + CRC_BITS - 1, -1, -1, dtype=np.uint64)
    data_bits = ((np.uint64(value) >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.concatenate(
        [np.array(START_MARKER, np.uint8), data_bits, np.array(END_MARKER, np.uint8)]
    )


def _check_frame(height: int, width: int) -> None:
    if width < MIN_WIDTH or band_height(height) < 1:
        raise ValueError(f"frame {width}x{height} too small for the barcode")


def encode_into(rgb: npt.NDArray[np.uint8], utc_ms: int) -> None:
    """Draw the barcode of ``utc_ms`` into the top band of ``rgb`` (H, W, 3) in place."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[0], rgb.shape[1]
    _check_frame(height, width)
    bits = cell_bits(utc_ms)
    columns = np.repeat(bits * np.uint8(255), np.diff(cell_bounds(width)))
    rgb[: band_height(height)] = columns[np.newaxis, :, np.newaxis]


def _central_rows(height: int) -> tuple[int, int]:
    band = band_height(height)
    top = band // 4
    bottom = band - band // 4
    return top, max(bottom, top + 1)


def _decode_profile(profile: npt.NDArray[np.float64]) -> int | None:
    """Decode from the per-column mean luma of the band's central rows."""
    width = profile.shape[0]
    bounds = cell_bounds(width)
    cell_width = np.diff(bounds)
    left = bounds[:-1] + cell_width // 4
    right = np.maximum(bounds[1:] - cell_width // 4, left + 1)
    cumulative = np.concatenate([[0.0], np.cumsum(profile)])
    cells = (cumulative[right] - cumulative[left]) / (right - left)
    white = float(cells[_WHITE_MARKERS].mean())
    black = float(cells[_BLACK_MARKERS].mean())
    contrast = white - black
    if contrast < MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    if np.any(np.abs(cells - threshold) < _MARGIN * contrast):
        return None
    bits = (cells > threshold).astype(np.uint8)
    if not np.array_equal(bits[_MARKER_CELLS], _MARKER_BITS):
        return None
    value = 0
    for bit in bits[TIME_FIRST_CELL:END_FIRST_CELL].tolist():
        value = (value << 1) | int(bit)
    utc_ms, crc = value >> CRC_BITS, value & 0xFF
    if crc8(utc_ms.to_bytes(6, "big")) != crc:
        return None
    return utc_ms


def decode_luma(y: npt.NDArray[np.uint8]) -> int | None:
    """Read the barcode from a luma plane (H, W); the ms value or ``None``."""
    if y.ndim != 2:
        raise ValueError(f"expected an (H, W) luma plane, got shape {y.shape}")
    height, width = y.shape
    if width < MIN_WIDTH or band_height(height) < 1:
        return None
    top, bottom = _central_rows(height)
    profile = y[top:bottom].mean(axis=0, dtype=np.float64)
    return _decode_profile(profile)


def decode_rgb(rgb: npt.NDArray[np.uint8]) -> int | None:
    """Read the barcode from an RGB frame (H, W, 3); the ms value or ``None``."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {rgb.shape}")
    height, width = rgb.shape[0], rgb.shape[1]
    if width < MIN_WIDTH or band_height(height) < 1:
        return None
    top, bottom = _central_rows(height)
    mean = rgb[top:bottom].mean(axis=0, dtype=np.float64)
    # BT.601 limited range luma, matching what a decoder hands back for yuv420p.
    profile = 16.0 + (65.481 * mean[:, 0] + 128.553 * mean[:, 1] + 24.966 * mean[:, 2]) / 255.0
    return _decode_profile(profile)
