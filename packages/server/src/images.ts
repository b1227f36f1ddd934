/**
 * Uploaded images to model inputs, through @descent/images, within the server's limits (tighter
 * than the command line's: a request body is held in memory while it is decoded). The byte size
 * is checked before anything is decoded (413); anything @descent/images refuses (too many
 * pixels, not an image) becomes a 422 naming the field.
 */
import { DataError } from '@descent/engine';
import { prepareImage } from '@descent/images';
import { HttpError } from './errors.js';

export interface ImageLimits {
  /** Largest encoded image, in bytes. */
  maxBytes: number;
  /** Most pixels (width × height) an image may declare. */
  maxPixels: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxBytes: 16 * 1024 * 1024, maxPixels: 4096 * 4096 };

/** The 28×28 pixels of an uploaded image; `field` names the request part in errors. */
export async function decodeUpload(input: { name: string; bytes: Uint8Array }, limits: ImageLimits, field = 'image'): Promise<Uint8Array> {
  if (input.bytes.length > limits.maxBytes) {
    throw new HttpError(413, `${field}: ${input.name} is ${input.bytes.length} bytes, more than the ${limits.maxBytes} allowed`, field);
  }
  try {
    return (await prepareImage(input.bytes, { name: input.name, ...limits })).pixels;
  } catch (err) {
    if (!(err instanceof DataError)) throw err;
    // The error names the input; a request field or a raw body says nothing more than `field` does.
    const named = `${input.name}: `;
    const problem = (input.name === field || input.name === 'body') && err.message.startsWith(named) ? err.message.slice(named.length) : err.message;
    throw new HttpError(422, `${field}: ${problem}`, field);
    throw err;
  }
}
