// Clock barcode decoder: the capture UTC time (ms) burned into a frame's top band.
//
// Same format as llhls/barcode.py (docs/contracts-dev.md):
//   band = rows [0, round(H/10)) (halves up), 64 cells across the full width,
//   cell i spans columns [floor(i*W/64), floor((i+1)*W/64)); white = 1, black = 0.
//   cells 0..1: 1 0 | 2..49: ms, 48 bits, MSB first | 50..57: CRC-8 (poly 0x07, init 0,
//   no reflection, no final xor) of the 6 big-endian bytes of ms | 58..63: 1 0 1 0 1 0.
// Decoding takes the mean luma (0.299 R + 0.587 G + 0.114 B) of each cell's central
// region (middle half in x and in y of the band), thresholds halfway between the means
// of the known-white and known-black marker cells, and checks the markers and the CRC.
// It returns null rather than a value it is not sure of.

export const CELLS = 64;
export const TIME_BITS = 48;
export const CRC_BITS = 8;
export const START_MARKER = [1, 0];
export const END_MARKER = [1, 0, 1, 0, 1, 0];
export const TIME_FIRST_CELL = START_MARKER.length; // 2
export const CRC_FIRST_CELL = TIME_FIRST_CELL + TIME_BITS; // 50
export const END_FIRST_CELL = CRC_FIRST_CELL + CRC_BITS; // 58
export const MIN_CONTRAST = 48; // white and black markers must differ by this much luma
const MARGIN = 0.2; // a cell closer to the threshold than this share of the contrast: unreadable

const MARKER_CELLS = [0, 1, 58, 59, 60, 61, 62, 63];
const MARKER_BITS = [...START_MARKER, ...END_MARKER];
const WHITE_MARKERS = MARKER_CELLS.filter((_, i) => MARKER_BITS[i] === 1);
const BLACK_MARKERS = MARKER_CELLS.filter((_, i) => MARKER_BITS[i] === 0);

const CRC_TABLE = (() => {
  const table = new Uint8Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let k = 0; k < 8; k++) {
      crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
    table[byte] = crc;
  }
  return table;
})();

/** CRC-8, polynomial 0x07, init 0, no reflection, no final xor. */
export function crc8(bytes) {
  let crc = 0;
  for (const byte of bytes) crc = CRC_TABLE[crc ^ byte];
  return crc;
}

/** The 6 big-endian bytes of a 48-bit millisecond value. */
export function msBytes(ms) {
  const bytes = new Uint8Array(6);
  let rest = ms;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return bytes;
}

/** Rows of the band for a frame `height` rows tall: round(H/10), halves up. */
export function bandHeight(height) {
  return Math.floor((height + 5) / 10);
}

/** The 65 column boundaries: cell i spans [b[i], b[i+1]). */
export function cellBounds(width) {
  const bounds = new Array(CELLS + 1);
  for (let i = 0; i <= CELLS; i++) bounds[i] = Math.floor((i * width) / CELLS);
  return bounds;
}

/** The 64 cell values (0 or 1) that encode `ms`. */
export function cellBits(ms) {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms >= 2 ** TIME_BITS) {
    throw new RangeError(`barcode time must be in [0, 2**48), got ${ms}`);
  }
  const bits = [...START_MARKER];
  for (let i = TIME_BITS - 1; i >= 0; i--) bits.push(Math.floor(ms / 2 ** i) % 2);
  const crc = crc8(msBytes(ms));
  for (let i = CRC_BITS - 1; i >= 0; i--) bits.push((crc >> i) & 1);
  bits.push(...END_MARKER);
  return bits;
}

/**
 * Draw the barcode of `ms` into RGBA pixels (`width` x `height`, 4 bytes per pixel).
 * Only the band is written. For tests and self-checks.
 */
export function encodeInto(rgba, width, height, ms) {
  const bits = cellBits(ms);
  const bounds = cellBounds(width);
  const rows = bandHeight(height);
  for (let i = 0; i < CELLS; i++) {
    const v = bits[i] ? 255 : 0;
    for (let y = 0; y < rows; y++) {
      for (let x = bounds[i]; x < bounds[i + 1]; x++) {
        const o = (y * width + x) * 4;
        rgba[o] = v;
        rgba[o + 1] = v;
        rgba[o + 2] = v;
        rgba[o + 3] = 255;
      }
    }
  }
}

/**
 * Decode the barcode from RGBA pixels (e.g. ImageData.data).
 *
 * `rgba` holds rows of `width` pixels (4 bytes each) starting at the frame's top;
 * it needs at least bandHeight(frameHeight) rows (the band alone is enough).
 * Returns the UTC milliseconds, or null when there is no readable barcode.
 */
export function decodeBarcode(rgba, width, frameHeight) {
  const band = bandHeight(frameHeight);
  if (width < CELLS || band < 1 || rgba.length < band * width * 4) return null;
  const top = Math.floor(band / 4);
  const bottom = Math.max(band - Math.floor(band / 4), top + 1);
  const bounds = cellBounds(width);
  const cells = new Float64Array(CELLS);
  for (let i = 0; i < CELLS; i++) {
    const w = bounds[i + 1] - bounds[i];
    const left = bounds[i] + Math.floor(w / 4);
    const right = Math.max(bounds[i + 1] - Math.floor(w / 4), left + 1);
    let sum = 0;
    for (let y = top; y < bottom; y++) {
      let o = (y * width + left) * 4;
      for (let x = left; x < right; x++, o += 4) {
        sum += 0.299 * rgba[o] + 0.587 * rgba[o + 1] + 0.114 * rgba[o + 2];
      }
    }
    cells[i] = sum / ((bottom - top) * (right - left));
  }
  return decodeCells(cells);
}

/** Decode from the 64 per-cell mean luma values; the ms value or null. */
export function decodeCells(cells) {
  const mean = (idx) => idx.reduce((acc, i) => acc + cells[i], 0) / idx.length;
  const white = mean(WHITE_MARKERS);
  const black = mean(BLACK_MARKERS);
  const contrast = white - black;
  if (!(contrast >= MIN_CONTRAST)) return null;
  const threshold = (white + black) / 2;
  const bits = new Array(CELLS);
  for (let i = 0; i < CELLS; i++) {
    if (Math.abs(cells[i] - threshold) < MARGIN * contrast) return null;
    bits[i] = cells[i] > threshold ? 1 : 0;
  }
  for (let k = 0; k < MARKER_CELLS.length; k++) {
    if (bits[MARKER_CELLS[k]] !== MARKER_BITS[k]) return null;
  }
  let ms = 0;
  for (let i = TIME_FIRST_CELL; i < CRC_FIRST_CELL; i++) ms = ms * 2 + bits[i];
  let crc = 0;
  for (let i = CRC_FIRST_CELL; i < END_FIRST_CELL; i++) crc = (crc << 1) | bits[i];
  return crc8(msBytes(ms)) === crc ? ms : null;
}

/**
 * Decode from whatever `source` shows now (a <video> or <img>), through `canvas`.
 * Draws only the band, at the source's own resolution. Returns ms or null.
 */
export function decodeFrom(source, canvas) {
  const width = source.videoWidth ?? source.naturalWidth ?? source.width;
  const height = source.videoHeight ?? source.naturalHeight ?? source.height;
  const band = bandHeight(height);
  if (!width || !height || band < 1) return null;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== band) canvas.height = band;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, band, 0, 0, width, band);
  return decodeBarcode(ctx.getImageData(0, 0, width, band).data, width, height);
}
