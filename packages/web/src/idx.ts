/**
 * IDX files as the server sends a dataset's split (GET /api/v1/datasets/{name}/{split}-images.idx
 * and …-labels.idx): magic 0x00000803 (images: count, rows, cols) or 0x00000801 (labels: count),
 * big-endian sizes, then one byte per value. Sizes are checked against the bytes received.
 */
export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

function header(bytes: Uint8Array, magic: number, what: string): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dimensions = magic & 0xff;
  if (bytes.length < 4 + 4 * dimensions || view.getUint32(0) !== magic) throw new Error(`${what}: not an IDX file of ${dimensions === 3 ? 'images' : 'labels'}`);
  const dims = Array.from({ length: dimensions }, (_, i) => view.getUint32(4 + 4 * i));
  const expected = 4 + 4 * dimensions + dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) throw new Error(`${what}: ${bytes.length} bytes where the header promises ${expected}`);
  return dims;
}

export function idxImages(bytes: Uint8Array, what: string): IdxImages {
  const [count, rows, cols] = header(bytes, 0x00000803, what);
  return { count, rows, cols, pixels: bytes.subarray(16) };
}

export function idxLabels(bytes: Uint8Array, what: string): Uint8Array {
  header(bytes, 0x00000801, what);
  return bytes.subarray(8);
}
