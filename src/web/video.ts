// Video files in the browser: frames out of a <video> element, and stylized frames back into a video file.
// A page stylizes far slower than real time on most devices, so frames are not taken from playback: the video is
// seeked to each frame's time (frame i at (i + ½)/fps), which shows every frame exactly once whatever the speed.
// The result is played on a canvas at the video's rate and recorded from it with MediaRecorder (WebM), so the file
// keeps the rate even though stylizing did not. The frame rate comes from requestVideoFrameCallback's media times
// where the browser has it (a <video> does not say its rate), else it is assumed.
import type { Image } from '../io/image.js';
import { grabFrame } from './frames.js';

const seeked = (video: HTMLVideoElement) => new Promise<void>((res) => video.addEventListener('seeked', () => res(), { once: true }));

/**
 * The frame rate of a video, from the media times of frames presented while it plays muted for a moment
 * (requestVideoFrameCallback); `fallback` where the browser lacks it or too few frames came. Leaves it paused at 0.
 */
export async function estimateFrameRate(video: HTMLVideoElement, fallback = 30, timeoutMs = 1500): Promise<number> {
  if (!('requestVideoFrameCallback' in video)) return fallback;
  const times: number[] = [];
  video.muted = true;
  const done = new Promise<void>((res) => {
    const timer = setTimeout(res, timeoutMs);
    const next = (_now: number, meta: VideoFrameCallbackMetadata) => {
      times.push(meta.mediaTime);
      if (times.length >= 8) {
        clearTimeout(timer);
        res();
      } else video.requestVideoFrameCallback(next);
    };
    video.requestVideoFrameCallback(next);
  });
  await video.play().catch(() => {});
  await done;
  video.pause();
  video.currentTime = 0;
  await seeked(video);
  const steps = times.slice(1).map((t, i) => t - times[i]).filter((d) => d > 1e-4).sort((a, b) => a - b);
  if (steps.length < 2) return fallback;
  const fps = 1 / steps[Math.floor(steps.length / 2)];
  // Snap to the usual rates (23.976, 25, 29.97, ...) when close: media times are rounded.
  const common = [24000 / 1001, 24, 25, 30000 / 1001, 30, 50, 60000 / 1001, 60];
  return common.find((r) => Math.abs(r - fps) / r < 0.02) ?? fps;
}

/** How many frames a video of `duration` seconds has at `fps` (at least 1). */
export const frameCount = (duration: number, fps: number): number => Math.max(1, Math.floor(duration * fps + 1e-6));

/**
 * The frames of a loaded <video> at `fps`, each scaled to width × height (drawn on `canvas` when given): seeks to
 * each frame in turn. Stops early when `signal` aborts.
 */
export async function* videoFrames(video: HTMLVideoElement, fps: number, width: number, height: number, opts: { canvas?: HTMLCanvasElement; frames?: number; signal?: AbortSignal } = {}): AsyncGenerator<Image> {
  const n = opts.frames ?? frameCount(video.duration, fps);
  video.pause();
  for (let i = 0; i < n; i++) {
    if (opts.signal?.aborted) return;
    const t = Math.min((i + 0.5) / fps, Math.max(0, video.duration - 1e-3));
    if (Math.abs(video.currentTime - t) > 1e-6) {
      const ready = seeked(video);
      video.currentTime = t;
      await ready;
    }
    yield grabFrame(video, width, height, opts.canvas);
  }
}

/** Draws frames on a canvas at `fps` (by the clock: late frames are not made up by showing later ones early);
 *  `drawn` runs after each one. */
export async function playFrames(canvas: HTMLCanvasElement, frames: readonly CanvasImageSource[], fps: number, signal?: AbortSignal, drawn?: () => void): Promise<void> {
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('playFrames: the canvas has no 2d context');
  const t0 = performance.now();
  for (const [i, f] of frames.entries()) {
    if (signal?.aborted) return;
    ctx.drawImage(f, 0, 0, canvas.width, canvas.height);
    drawn?.();
    const wait = t0 + ((i + 1) * 1000) / fps - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** Plays frames on the canvas at `fps` and records them (MediaRecorder, WebM): a video file of the frames. */
export async function recordFrames(canvas: HTMLCanvasElement, frames: readonly CanvasImageSource[], fps: number): Promise<Blob> {
  // Frames are pushed as they are drawn (requestFrame), none left to a sampling clock that may miss one.
  const stream = canvas.captureStream(0);
  const track = stream.getVideoTracks()[0] as CanvasCaptureMediaStreamTrack;
  const type = ['video/webm;codecs=vp9', 'video/webm;codecs=vp8', 'video/webm'].find((t) => MediaRecorder.isTypeSupported(t));
  if (!type) throw new Error('recordFrames: this browser cannot record WebM (MediaRecorder)');
  const rec = new MediaRecorder(stream, { mimeType: type });
  const chunks: Blob[] = [];
  rec.ondataavailable = (e) => e.data.size && chunks.push(e.data);
  const stopped = new Promise<void>((res) => (rec.onstop = () => res()));
  const started = new Promise<void>((res) => (rec.onstart = () => res()));
  rec.start();
  await started;
  await playFrames(canvas, frames, fps, undefined, () => track.requestFrame());
  rec.stop();
  await stopped;
  for (const t of stream.getTracks()) t.stop();
  return new Blob(chunks, { type: 'video/webm' });
}
