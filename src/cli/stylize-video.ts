// `perceptual stylize-video IN --out OUT [options]`: a video file stylized frame by frame (in batches on the GPU),
// streamed through ffmpeg with the audio copied; Ctrl-C stops after the current batch and leaves a playable file.
import { DEFAULT_MODEL } from '../api/default-model.js';
import { loadModel } from '../api/model-node.js';
import { styleOf } from '../api/styles.js';
import { checkVideoJob, scaledSize, stylizeVideo } from '../api/video-node.js';
import { Gpu } from '../gpu/index.js';
import { command } from './command.js';
import { Progress } from './progress.js';
import { modelOption } from './weight-files.js';

export const stylizeVideoCli = command({
  name: 'stylize-video',
  summary: 'stylize a video file (audio copied, Ctrl-C keeps the frames done)',
  description: `Stylizes every frame of a video with a style model (default: the embedded one) and writes a video of
the same frame count and frame rate, the audio copied unchanged. Decoding and encoding go through ffmpeg
(Debian: apt-get install ffmpeg; or set PERCEPTUAL_FFMPEG and PERCEPTUAL_FFPROBE). The output's container
follows its extension: .mp4/.mov/.mkv get H.264, .webm VP9. Ctrl-C stops after the current batch and leaves
a playable file of the frames done so far.`,
  positionals: { name: 'IN', max: 1 },
  options: {
    out: { type: 'string', arg: 'FILE', required: true, help: 'output video (.mp4, .mkv, .mov, .webm, ...)' },
    model: { type: 'string', arg: 'FILE', help: `style model (default: the embedded ${DEFAULT_MODEL.name})` },
    style: { type: 'string', arg: 'NAME[:W,...]', help: 'a style of a multi-style model, or a blend' },
    arch: { type: 'string', choices: ['paper', 'pytorch-examples'], help: 'architecture for files that do not record one' },
    size: { type: 'int', arg: 'PX', min: 8, help: 'shorter side of the output (480 for 480p; default: the input\'s)' },
    'preserve-color': { type: 'boolean', help: "keep the content's colours (luminance-only transfer)" },
    strength: { type: 'number', arg: 'S', min: 0, max: 1, default: 1, help: '0..1, blend with the content' },
    batch: { type: 'int', arg: 'N', min: 1, default: 4, help: 'frames per batch on the GPU' },
    blur: { type: 'number', arg: 'PX', min: 0, default: 0, help: 'blur each frame by σ PX before the network: less flicker\n(1.5: −10 % warping error, +5 % style loss), a little less detail' },
  },
  async run(o, [input]) {
    // The files first: a bad input or output is reported before the GPU starts.
    await checkVideoJob(input, o.out);
    const controller = new AbortController();
    let progress: Progress | undefined;
    const onSigint = () => {
      const say = `perceptual stylize-video: stopping after this batch; ${o.out} will hold the frames done so far…`;
      if (progress) progress.log(say);
      else console.error(say);
      controller.abort();
    };
    process.once('SIGINT', onSigint);
    const gpu = await Gpu.create();
    try {
      const { path, name } = modelOption(o.model, DEFAULT_MODEL);
      const net = await loadModel(gpu, path, { arch: o.arch, file: name });
      try {
        const style = o.style === undefined ? undefined : styleOf(net, o.style);
        const r = await stylizeVideo(gpu, net, input, o.out, {
          size: o.size,
          preserveColor: o['preserve-color'],
          strength: o.strength,
          style,
          batch: o.batch,
          blur: o.blur,
          signal: controller.signal,
          onInfo: (info) => (progress = new Progress({ label: 'frame', style: 'counter', total: info.frames ?? undefined })),
          onProgress: (p) => progress?.update(p.done, undefined, `${p.fps.toFixed(2)} fps`),
        });
        progress?.finish();
        const [width, height] = scaledSize(r.info, o.size);
        const what = `${r.frames} frame${r.frames === 1 ? '' : 's'}, ${r.info.frameRate.replace(/\/1$/, '')} fps${r.info.audio ? `, audio (${r.info.audio}) copied` : ''}`;
        console.log(`${r.status === 'aborted' ? 'stopped: ' : ''}${input} → ${o.out} (${width}×${height}, ${what})`);
        return 0;
      } finally {
        net.dispose();
      }
    } catch (e) {
      progress?.fail();
      throw e;
    } finally {
      process.off('SIGINT', onSigint);
      gpu.destroy();
    }
  },
});
