// Pixels of an image, video frame or canvas as the engine's Image (RGB 0..255, planar), through a 2D canvas.
import { fromRGBA, type Image } from '../io/image.js';

/** The size that fits within maxSide × maxSide keeping the aspect ratio, never enlarged. */
export function fitSize(width: number, height: number, maxSide: number): [number, number] {
  const s = Math.min(1, maxSide / Math.max(width, height));
  return [Math.max(1, Math.round(width * s)), Math.max(1, Math.round(height * s))];
}

/**
 * Draws `source` scaled to width × height on `canvas` (a visible one shows the network's input) and returns its
 * pixels. An image drawn at its own size is copied exactly (no resampling; decode it with colorSpaceConversion
 * 'none' to keep its values as stored).
 */
export function grabFrame(source: CanvasImageSource, width: number, height: number, canvas: HTMLCanvasElement | OffscreenCanvas = new OffscreenCanvas(width, height)): Image {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new Error('grabFrame: the canvas has no 2d context');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, width, height);
  return fromRGBA(ctx.getImageData(0, 0, width, height).data, width, height);
}
