/**
 * The one PNG layout a prediction usually arrives in, decoded without a library's set-up: 8-bit
 * grayscale (colour type 0), not interlaced, of a known small size. pngjs decodes every other
 * PNG; for this one its per-call set-up (parser, filter and bitmapper objects) cost about 25 of
 * the 33 µs it took on a 28×28 image, more than inflating does.
 *
 * Returns the pixels (width × height bytes, row-major), or undefined for anything else or
 * anything odd: another size or layout, a palette or transparency chunk, an unknown critical
 * chunk, a wrong CRC, a zlib stream that does not inflate to exactly the declared rows, or an
 * unknown filter type. The caller then hands the bytes to pngjs, which decides and words errors.
 *
 * Memory is bounded before anything is allocated: the input is at most `maxBytes`, and inflating
 * stops at the declared size plus one byte (so a zlib bomb costs that much, no more).
 */
import zlib from 'node:zlib';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IHDR = 0x49484452;
const IDAT = 0x49444154;
const IEND = 0x49454e44;
const PLTE = 0x504c5445;
const TRNS = 0x74524e53;

export function decodeGray8Png(bytes: Uint8Array, width: number, height: number, maxBytes: number): Uint8Array | undefined {
  if (typeof zlib.crc32 !== 'function' || bytes.length > maxBytes || bytes.length < 8 + 25 + 12) return undefined;
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // IHDR first, 13 bytes: width, height, bit depth 8, colour type 0, compression 0, filter 0, interlace 0.
  if (view.getUint32(8) !== 13 || view.getUint32(12) !== IHDR) return undefined;
  if (view.getUint32(16) !== width || view.getUint32(20) !== height) return undefined;
  if (bytes[24] !== 8 || bytes[25] !== 0 || bytes[26] !== 0 || bytes[27] !== 0 || bytes[28] !== 0) return undefined;
  const idat: Uint8Array[] = [];
  let offset = 8;
  let ended = false;
  let previous = IHDR;
  while (!ended) {
    if (offset + 12 > bytes.length) return undefined;
    const length = view.getUint32(offset);
    const type = view.getUint32(offset + 4);
    const end = offset + 12 + length;
    if (length > bytes.length || end > bytes.length) return undefined;
    if (zlib.crc32(bytes.subarray(offset + 4, offset + 8 + length)) !== view.getUint32(offset + 8 + length)) return undefined;
    if (type === IDAT) {
      // IDAT chunks must follow one another.
      if (idat.length > 0 && previous !== IDAT) return undefined;
      idat.push(bytes.subarray(offset + 8, offset + 8 + length));
    } else if (type === IEND) {
      ended = true;
    } else if (type === PLTE || type === TRNS) {
      return undefined;
    } else if (offset !== 8 && (bytes[offset + 4] & 0x20) === 0) {
      return undefined; // an unknown critical chunk (upper-case first letter)
    }
    previous = type;
    offset = end;
  }
  if (idat.length === 0) return undefined;
  const stride = width + 1; // each row starts with its filter type
  let filtered: Buffer;
  try {
    filtered = zlib.inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat), { maxOutputLength: height * stride + 1 });
  } catch {
    return undefined;
  }
  if (filtered.length !== height * stride) return undefined;
  return unfilter(filtered, width, height);
}

/**
 * Undoes PNG's per-row filters for one byte per pixel (a = left, b = above, c = above-left;
 * each is 0 outside the image): 0 none, 1 x + a, 2 x + b, 3 x + ⌊(a + b) / 2⌋, 4 x + Paeth(a, b, c).
 */
function unfilter(filtered: Uint8Array, width: number, height: number): Uint8Array | undefined {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const type = filtered[y * (width + 1)];
    const src = y * (width + 1) + 1;
    const row = y * width;
    const above = row - width;
    if (type === 0) {
      for (let x = 0; x < width; x++) out[row + x] = filtered[src + x];
    } else if (type === 1) {
      let a = 0;
      for (let x = 0; x < width; x++) a = out[row + x] = (filtered[src + x] + a) & 0xff;
    } else if (type === 2) {
      for (let x = 0; x < width; x++) out[row + x] = (filtered[src + x] + (y > 0 ? out[above + x] : 0)) & 0xff;
    } else if (type === 3) {
      for (let x = 0; x < width; x++) {
        const a = x > 0 ? out[row + x - 1] : 0;
        const b = y > 0 ? out[above + x] : 0;
        out[row + x] = (filtered[src + x] + ((a + b) >> 1)) & 0xff;
      }
    } else if (type === 4) {
      for (let x = 0; x < width; x++) {
        const a = x > 0 ? out[row + x - 1] : 0;
        const b = y > 0 ? out[above + x] : 0;
        const c = x > 0 && y > 0 ? out[above + x - 1] : 0;
        out[row + x] = (filtered[src + x] + paeth(a, b, c)) & 0xff;
      }
    } else {
      return undefined;
    }
  }
  return out;
}

/** Of a, b and c, the one nearest to a + b − c (ties: a, then b). */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}
