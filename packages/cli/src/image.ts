/** Image files to 28×28 inputs: the shared implementation in @descent/images (size and pixel limits, one-line errors). */
import { prepareImage as prepare, type PreparedImage } from '@descent/images';

export { IMAGE_SIZE, LOW_CONTRAST, borderMedian, type PreparedImage } from '@descent/images';

/** An image file, or an image's bytes with a name for messages (a zip entry, an upload). */
export type ImageInput = string | { name: string; bytes: Uint8Array };

export function prepareImage(input: ImageInput): Promise<PreparedImage> {
  return typeof input === 'string' ? prepare(input) : prepare(input.bytes, { name: input.name });
}
