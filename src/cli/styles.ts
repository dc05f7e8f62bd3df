// `perceptual styles [--model FILE]`: the styles a model offers (default: the embedded one), with what its file
// says of each: title, artist, source and licence. Reads the file's header only (no GPU).
import { DEFAULT_MODEL } from '../api/default-model.js';
import { readWeightBytes } from '../io/weight-file.js';
import { styleInfoOf } from '../nets/model-file.js';
import { command } from './command.js';
import { modelOption, readWeightFile } from './weight-files.js';

export const styles = command({
  name: 'styles',
  summary: 'list the styles of a model (default: the embedded one), with their source and licence',
  description: `Lists the styles a style model offers, in order, with the title, artist, source and licence its file records.
Pick one with 'perceptual stylize --style NAME', or blend several with --style NAME:W,NAME:W.`,
  options: {
    model: { type: 'string', arg: 'FILE', help: `style model (default: the embedded ${DEFAULT_MODEL.name})` },
    json: { type: 'boolean', help: 'print the list as JSON' },
  },
  async run(o) {
    const { path, name } = modelOption(o.model, DEFAULT_MODEL);
    const { metadata } = readWeightBytes(await readWeightFile(path, '--model'), name);
    const list = styleInfoOf(metadata, Number(metadata.styles ?? 1));
    if (o.json) {
      console.log(JSON.stringify(list, null, 2));
      return 0;
    }
    console.log(`${name}: ${list.length} style${list.length > 1 ? 's' : ''}`);
    list.forEach(({ name, ...rest }, i) => {
      const about = [rest.title && rest.artist ? `${rest.title}, ${rest.artist}${rest.year ? ` (${rest.year})` : ''}` : rest.title, rest.licence && `licence: ${rest.licence}`, rest.source && `source: ${rest.source}`].filter(Boolean);
      console.log(`  ${String(i).padStart(2)}  ${name.padEnd(20)} ${about.join('; ')}`);
    });
    return 0;
  },
});
