// `perceptual <command>`: a thin layer over the library. Each command lives in its own file.
import { classify } from './classify.js';
import { evalSr } from './eval-sr.js';
import { gatys } from './gatys.js';
import { info } from './info.js';
import { trainSrCli } from './train-sr.js';
import { upscale } from './upscale.js';
import { stylize } from './stylize.js';
import { trainStyleCli } from './train-style.js';
import { weights } from './weights.js';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  info: { run: info, help: 'print the WebGPU adapter (vendor, architecture, features, limits) and run a self-check on it' },
  classify: { run: classify, help: 'top-5 ImageNet classes of images (SqueezeNet 1.1)' },
  'train-style': { run: trainStyleCli, help: 'train a fast style transfer network on a folder of images' },
  stylize: { run: stylize, help: 'stylize images with a trained model (default: the embedded one)' },
  'eval-sr': { run: evalSr, help: 'PSNR/SSIM (Y) of super-resolution, a model or bicubic, on a folder of HR images' },
  'train-sr': { run: trainSrCli, help: 'train a super-resolution network (x4/x8, feature or pixel loss) on a folder of images' },
  upscale: { run: upscale, help: 'super-resolve images with a trained SR model' },
  gatys: { run: gatys, help: 'style transfer by optimisation (Gatys et al.), the baseline of Table 1' },
  weights: { run: weights, help: 'download official pretrained loss networks (vgg16, squeezenet1_1) into the cache as safetensors' },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(14)} ${c.help}`);
  return `usage: perceptual <command> [options]\n\ncommands:\n${rows.join('\n')}\n\nRun 'perceptual <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 1;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`perceptual: unknown command '${cmd}'\n\n${usage()}`);
    return 2;
  }
  return c.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as Error;
    console.error(`perceptual: ${e?.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e?.message ?? String(err)}`);
    if (process.env.PERCEPTUAL_DEBUG === '1') console.error(e?.stack);
    process.exitCode = 1;
  },
);
