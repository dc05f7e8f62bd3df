// Video files in Node through ffmpeg (a separate program: Debian's `ffmpeg` package, or any build named by
// $PERCEPTUAL_FFMPEG / $PERCEPTUAL_FFPROBE). Streaming both ways: one ffmpeg decodes to raw RGB frames on a pipe,
// another encodes raw frames from a pipe and copies the input's audio unchanged. Pipes apply backpressure, so
// memory holds a batch of frames whatever the video's length. The output is written to a temporary file beside
// it and renamed when ffmpeg has finalised it — also after a stop, so a stopped run leaves a playable file of the
// frames done so far, and a failed one leaves nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Gpu } from '../gpu/index.js';
import { fromInterleaved, toRGB, type Image } from '../io/image.js';
import { stylizeFrames, type FrameOptions } from './video.js';
import type { ImageNetwork } from './tiled.js';

/** A video file could not be read or written; the message names the file. */
export class VideoFileError extends Error {
  override name = 'VideoFileError';
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

export interface VideoInfo {
  /** Frame size as decoded (after the file's rotation, which ffmpeg applies). */
  width: number;
  height: number;
  /** Frames per second, and as ffmpeg's exact rational (e.g. "30000/1001"). */
  fps: number;
  frameRate: string;
  /** The frame count (from the container, else duration × fps), or null when unknown. */
  frames: number | null;
  /** Seconds, or null when unknown. */
  duration: number | null;
  codec: string;
  /** The first audio stream's codec, or null when the file has none. */
  audio: string | null;
}

const tool = (name: 'ffmpeg' | 'ffprobe'): string => process.env[`PERCEPTUAL_${name.toUpperCase()}`] || name;

function notFound(name: string): Error {
  return new Error(`${name} not found: install it (Debian/Ubuntu: apt-get install ffmpeg) or set PERCEPTUAL_${name.toUpperCase()} to its path`);
}

/** ffmpeg's last meaningful stderr line (its messages end with the reason). */
function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? 'no message';
}

/** Spawns ffmpeg/ffprobe; a missing program becomes one line saying how to install it. */
function launch(name: 'ffmpeg' | 'ffprobe', args: string[], stdin: 'pipe' | 'ignore'): { proc: ChildProcess; exit: Promise<{ code: number | null; stderr: string }> } {
  // Its own process group: Ctrl-C on the terminal reaches us only, and we finalise the output ourselves.
  const proc = spawn(tool(name), args, { stdio: [stdin, 'pipe', 'pipe'], detached: true });
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => (stderr = (stderr + d).slice(-8192)));
  const exit = new Promise<{ code: number | null; stderr: string }>((res, rej) => {
    proc.once('error', (e: NodeJS.ErrnoException) => rej(e.code === 'ENOENT' ? notFound(name) : e));
    proc.once('close', (code) => res({ code, stderr }));
  });
  exit.catch(() => {}); // observed by whoever awaits it
  return { proc, exit };
}

function fileReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' ? 'no such file or directory' : code === 'ENOTDIR' ? 'a parent is not a directory' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String((e as Error)?.message ?? e);
}

/** A rational such as "30000/1001" as a number; 0 when it is not a positive rate. */
function rate(r: string | undefined): number {
  const [n, d] = (r ?? '').split('/').map(Number);
  return n > 0 && d > 0 ? n / d : 0;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
  tags?: { rotate?: string };
  side_data_list?: { rotation?: number }[];
}

/** What ffprobe says of a file's first video stream (and whether it has audio). */
export async function probeVideo(path: string): Promise<VideoInfo> {
  const s = await stat(path).catch((e) => {
    throw new VideoFileError(`cannot read video '${path}': ${fileReason(e)}`, path);
  });
  if (s.isDirectory()) throw new VideoFileError(`cannot read video '${path}': is a directory`, path);
  const { proc, exit } = launch('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path], 'ignore');
  let out = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => (out += d));
  const { code, stderr } = await exit;
  if (code !== 0) throw new VideoFileError(`'${path}' is not a video (ffprobe: ${lastLine(stderr).replace(`${path}: `, '')})`, path);
  const j = JSON.parse(out) as { streams?: ProbeStream[]; format?: { duration?: string } };
  const streams = j.streams ?? [];
  const v = streams.find((t) => t.codec_type === 'video' && !t.disposition?.attached_pic);
  if (!v || !v.width || !v.height) throw new VideoFileError(`'${path}' has no video stream`, path);
  const rot = Number(v.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? v.tags?.rotate ?? 0);
  const turned = Math.abs(rot) % 180 === 90;
  const fr = rate(v.avg_frame_rate) ? v.avg_frame_rate! : v.r_frame_rate!;
  const fps = rate(fr);
  if (!fps) throw new VideoFileError(`'${path}': its video stream has no frame rate`, path);
  const duration = Number(v.duration ?? j.format?.duration);
  const nb = Number(v.nb_frames);
  const audio = streams.find((t) => t.codec_type === 'audio');
  return {
    width: turned ? v.height : v.width,
    height: turned ? v.width : v.height,
    fps,
    frameRate: fr,
    frames: nb > 0 ? nb : duration > 0 ? Math.round(duration * fps) : null,
    duration: duration > 0 ? duration : null,
    codec: v.codec_name ?? 'unknown',
    audio: audio?.codec_name ?? null,
  };
}

/** The frame size for a shorter side of `size` pixels (480 for 480p), keeping the aspect ratio; as is without. */
export function scaledSize(info: { width: number; height: number }, size?: number): [number, number] {
  if (!size) return [info.width, info.height];
  const s = size / Math.min(info.width, info.height);
  return [Math.max(1, Math.round(info.width * s)), Math.max(1, Math.round(info.height * s))];
}

export interface ReadVideoOptions {
  /** Decode to this [width, height] (scaled by ffmpeg); default the video's own. */
  size?: readonly [number, number];
}

/** The frames of a video file, in order, decoded by ffmpeg one at a time (one frame in memory at a time). */
export async function* readVideo(path: string, opts: ReadVideoOptions = {}): AsyncGenerator<Image> {
  const info = opts.size ? null : await probeVideo(path);
  const [W, H] = opts.size ?? [info!.width, info!.height];
  const scale = opts.size ? ['-vf', `scale=${W}:${H}:flags=bicubic`] : [];
  const { proc, exit } = launch('ffmpeg', ['-v', 'error', '-nostdin', '-i', path, '-map', '0:v:0', '-fps_mode', 'passthrough', ...scale, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], 'ignore');
  const size = 3 * W * H;
  let done = false;
  try {
    let buf = Buffer.alloc(size);
    let fill = 0;
    for await (const chunk of proc.stdout! as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(size - fill, chunk.length - off);
        chunk.copy(buf, fill, off, off + n);
        fill += n;
        off += n;
        if (fill === size) {
          yield fromInterleaved(buf, W, H, 3);
          buf = Buffer.alloc(size);
          fill = 0;
        }
      }
    }
    const { code, stderr } = await exit;
    if (code !== 0) throw new VideoFileError(`cannot decode video '${path}': ${lastLine(stderr)}`, path);
    done = true;
  } finally {
    // Stopped early (the consumer returned or failed): the decoder is not needed any more.
    if (!done && proc.exitCode === null) proc.kill('SIGKILL');
  }
}

/** The temporary file a video is written to beside `path`, created empty: whether it can be written is known before
 *  any work (ffmpeg would only say so once the first frame arrives). */
async function writableTemp(path: string): Promise<string> {
  const temp = join(dirname(path), `.${basename(path, extname(path))}.part-${process.pid}${extname(path)}`);
  const s = await stat(path).catch(() => null);
  if (s?.isDirectory()) throw new VideoFileError(`cannot write video '${path}': is a directory`, path);
  await open(temp, 'w')
    .then((f) => f.close())
    .catch((e) => {
      throw new VideoFileError(`cannot write video '${path}': ${fileReason(e)}`, path);
    });
  return temp;
}

/** Everything stylizeVideo checks before any work: the output is not the input and can be written, and the input is
 *  a video with a video stream. Returns the input's probe. */
export async function checkVideoJob(input: string, output: string): Promise<VideoInfo> {
  const same = resolve(input) === resolve(output) || (await Promise.all([stat(input), stat(output)]).then(([a, b]) => a.dev === b.dev && a.ino === b.ino).catch(() => false));
  if (same) throw new VideoFileError(`the output '${output}' is the input: choose another file`, output);
  const info = await probeVideo(input);
  await rm(await writableTemp(output), { force: true });
  return info;
}

/** Encoder settings by container: H.264 (yuv420p where the size allows, which players need) or VP9 in WebM. */
function codecArgs(ext: string, W: number, H: number): string[] {
  const even = W % 2 === 0 && H % 2 === 0;
  if (['.mp4', '.m4v', '.mov', '.mkv'].includes(ext)) return ['-c:v', 'libx264', '-preset', 'medium', '-crf', '18', '-pix_fmt', even ? 'yuv420p' : 'yuv444p'];
  if (ext === '.webm') return ['-c:v', 'libvpx-vp9', '-crf', '32', '-b:v', '0', '-deadline', 'realtime', '-cpu-used', '8', '-pix_fmt', 'yuv420p'];
  return []; // whatever ffmpeg picks for the container
}

export interface WriteVideoOptions {
  width: number;
  height: number;
  /** Frames per second as a rational ("30000/1001") or a number. */
  frameRate: string | number;
  /** Copy this file's audio (its first audio stream, unchanged) into the output. */
  audioFrom?: string;
}

/** Encodes frames into a video file through ffmpeg; the file appears under its name when closed. */
export class VideoWriter {
  private failed: Error | null = null;
  frames = 0;

  private constructor(
    readonly path: string,
    private readonly temp: string,
    private readonly proc: ChildProcess,
    private readonly exit: Promise<{ code: number | null; stderr: string }>,
    private readonly opts: WriteVideoOptions,
  ) {
    proc.stdin!.on('error', () => {}); // a dead encoder is reported by write/close with its own message
  }

  static async open(path: string, opts: WriteVideoOptions): Promise<VideoWriter> {
    const ext = extname(path).toLowerCase();
    const temp = await writableTemp(path);
    const { width: W, height: H } = opts;
    const audio = opts.audioFrom ? ['-i', opts.audioFrom, '-map', '0:v', '-map', '1:a:0?', '-c:a', 'copy'] : ['-map', '0:v'];
    const args = ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${W}x${H}`, '-framerate', String(opts.frameRate), '-i', 'pipe:0', ...audio, ...codecArgs(ext, W, H), temp];
    const { proc, exit } = launch('ffmpeg', args, 'pipe');
    return new VideoWriter(path, temp, proc, exit, opts);
  }

  private async died(): Promise<Error> {
    const { stderr } = await this.exit.catch((e: Error) => ({ stderr: e.message }));
    return (this.failed ??= new VideoFileError(`cannot write video '${this.path}': ffmpeg: ${lastLine(stderr)}`, this.path));
  }

  /** Appends a frame (the writer's size); waits while ffmpeg's pipe is full. */
  async write(img: Image): Promise<void> {
    if (img.width !== this.opts.width || img.height !== this.opts.height) throw new Error(`VideoWriter: a ${img.width}×${img.height} frame for a ${this.opts.width}×${this.opts.height} video`);
    const stdin = this.proc.stdin!;
    if (this.failed || this.proc.exitCode !== null || stdin.destroyed) throw await this.died();
    const ok = stdin.write(toRGB(img));
    this.frames++;
    if (!ok) {
      const gone = await new Promise<boolean>((res) => {
        const onDrain = () => (stdin.off('close', onClose), res(false));
        const onClose = () => (stdin.off('drain', onDrain), res(true));
        stdin.once('drain', onDrain);
        stdin.once('close', onClose);
      });
      if (gone) throw await this.died();
    }
  }

  /** Ends the stream, waits for ffmpeg to finalise the file and moves it to its name. */
  async close(): Promise<void> {
    this.proc.stdin!.end();
    const { code, stderr } = await this.exit.catch((e: Error) => ({ code: -1, stderr: e.message }));
    if (code !== 0) {
      await rm(this.temp, { force: true });
      throw (this.failed ??= new VideoFileError(`cannot write video '${this.path}': ffmpeg: ${lastLine(stderr)}`, this.path));
    }
    await rename(this.temp, this.path);
  }

  /** Stops ffmpeg and removes the unfinished file. */
  async abort(): Promise<void> {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    await this.exit.catch(() => {});
    await rm(this.temp, { force: true });
  }
}

export interface VideoProgress {
  /** Frames written. */
  done: number;
  /** The input's frame count, when known. */
  total: number | null;
  /** Frames per second over the run so far. */
  fps: number;
}

export interface StylizeVideoOptions extends FrameOptions {
  /** Shorter side of the output in pixels (480 for 480p); default the input's size. */
  size?: number;
  onProgress?: (p: VideoProgress) => void;
  /** Called with the probe before any frame (e.g. to size a progress display). */
  onInfo?: (info: VideoInfo) => void;
}

export interface StylizeVideoResult {
  status: 'completed' | 'aborted';
  frames: number;
  info: VideoInfo;
  output: string;
}

/**
 * Stylizes a video file into another: frames decoded, stylized in batches and encoded as a stream; the audio is
 * copied unchanged; frame count, frame rate and (without `size`) frame size are the input's. `signal` stops after
 * the current batch and still finalises the output (a playable file of the frames done).
 */
export async function stylizeVideo(gpu: Gpu, net: ImageNetwork, input: string, output: string, opts: StylizeVideoOptions = {}): Promise<StylizeVideoResult> {
  const info = await checkVideoJob(input, output);
  opts.onInfo?.(info);
  const [width, height] = scaledSize(info, opts.size);
  const writer = await VideoWriter.open(output, { width, height, frameRate: info.frameRate, audioFrom: info.audio ? input : undefined });
  const t0 = performance.now();
  try {
    for await (const frame of stylizeFrames(gpu, net, readVideo(input, { size: [width, height] }), opts)) {
      await writer.write(frame);
      opts.onProgress?.({ done: writer.frames, total: info.frames, fps: (writer.frames * 1000) / (performance.now() - t0) });
    }
    await writer.close();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  return { status: opts.signal?.aborted ? 'aborted' : 'completed', frames: writer.frames, info, output };
}
