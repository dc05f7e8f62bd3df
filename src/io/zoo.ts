// The official pretrained loss networks we can fetch: torchvision's ImageNet checkpoints on the PyTorch model server.
//
// Integrity: torchvision names its files `<arch>-<hash prefix>.pth`, where the prefix is the first 8 hex digits of
// the file's sha256. torch.hub's `load_state_dict_from_url(..., check_hash=True)` takes that prefix from the file
// name (HASH_REGEX = r'-([a-f0-9]*)\.') and `download_url_to_file` checks `sha256(file).hexdigest()` starts with it;
// we do the same check (see `hashPrefixOf`), and additionally the full sha256 where it is known.
//
// Only the convolutional trunk is kept when converting (`keep`): VGG-16's and VGG-19's classifiers are ~470 MiB of
// fully connected weights that perceptual losses never use; SqueezeNet's classifier is one small 1x1 convolution, kept.

export type ZooName = 'vgg16' | 'vgg19' | 'squeezenet1_1';

export interface ZooEntry {
  name: ZooName;
  /** The architecture the state dict belongs to (torchvision's `models.<arch>`). */
  arch: ZooName;
  /** The file name on the server: torchvision's `<arch>-<first 8 hex digits of sha256>.pth`. */
  file: string;
  /** The official download address. */
  url: string;
  /** The sha256 prefix carried by the file name (torch.hub's check_hash convention). */
  hashPrefix: string;
  /** The full sha256 of the official file, when known: checked in addition to the prefix. */
  sha256?: string;
  /** Size in bytes of the official file (informational: shown before a download; not trusted over the server). */
  size?: number;
  /** State-dict name prefixes kept in the converted file. */
  keep: string[];
  /** How inputs must be prepared: RGB in [0,1], then normalised with the ImageNet mean/std. */
  input: 'rgb01_imagenet_norm';
  license: string;
  description: string;
}

/** torch.hub's HASH_REGEX: the first `-<hex>.` in a file name gives the expected sha256 prefix. */
export function hashPrefixOf(file: string): string | undefined {
  return /-([a-f0-9]*)\./.exec(file)?.[1] || undefined;
}

const TORCHVISION_LICENSE =
  'BSD-3-Clause (torchvision, https://github.com/pytorch/vision/blob/main/LICENSE); trained on ImageNet-1K, whose ' +
  'terms may also apply (see https://pytorch.org/vision/stable/models.html)';

const BASE = 'https://download.pytorch.org/models/';

function entry(e: Omit<ZooEntry, 'url' | 'hashPrefix' | 'arch' | 'input' | 'license'>): ZooEntry {
  const hashPrefix = hashPrefixOf(e.file);
  if (!hashPrefix) throw new Error(`zoo: ${e.file} carries no hash prefix`);
  return { ...e, arch: e.name, url: BASE + e.file, hashPrefix, input: 'rgb01_imagenet_norm', license: TORCHVISION_LICENSE };
}

export const ZOO: Readonly<Record<ZooName, ZooEntry>> = {
  // torchvision.models.VGG16_Weights.IMAGENET1K_V1
  vgg16: entry({
    name: 'vgg16',
    file: 'vgg16-397923af.pth',
    sha256: '397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0',
    size: 553_433_881,
    keep: ['features.'],
    description: 'VGG-16 (ImageNet-1K), torchvision; the loss network of Johnson et al. 2016',
  }),
  // torchvision.models.VGG19_Weights.IMAGENET1K_V1 (only the hash prefix of its file name is known here)
  vgg19: entry({
    name: 'vgg19',
    file: 'vgg19-dcbb9e9d.pth',
    size: 574_673_361,
    keep: ['features.'],
    description: 'VGG-19 (ImageNet-1K), torchvision; the loss network of Gatys et al. 2016',
  }),
  // torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1
  squeezenet1_1: entry({
    name: 'squeezenet1_1',
    file: 'squeezenet1_1-b8a52dc0.pth',
    sha256: 'b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b',
    size: 4_958_839,
    keep: ['features.', 'classifier.'],
    description: 'SqueezeNet 1.1 (ImageNet-1K), torchvision; a small, fast loss network',
  }),
};

export const ZOO_NAMES = Object.keys(ZOO) as ZooName[];

export function isZooName(name: string): name is ZooName {
  return Object.prototype.hasOwnProperty.call(ZOO, name);
}

/** The table entry for `name`; an unknown name is an error listing the known ones. */
export function zooEntry(name: string): ZooEntry {
  if (!isZooName(name)) throw new Error(`unknown weights '${name}' (known: ${ZOO_NAMES.join(', ')})`);
  return ZOO[name];
}
