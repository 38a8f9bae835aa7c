/**
 * A Lambda layer with ffmpeg and ffprobe at /opt/bin. The binaries are the static linux-x64 builds
 * that npm ships (@ffmpeg-installer/linux-x64, @ffprobe-installer/linux-x64), the same ones the
 * tests and the local pipeline run, so the Lambda decodes exactly as tested. Bundled by copying
 * files on the host: no Docker needed to synthesize.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { hostBundledLayer } from './host-bundled-layer';

/** Where the function finds the binaries (layers are extracted under /opt). */
export const LAYER_FFMPEG_PATH = '/opt/bin/ffmpeg';
export const LAYER_FFPROBE_PATH = '/opt/bin/ffprobe';

interface ShippedBinary {
  pkg: string;
  file: string;
}
const BINARIES: ShippedBinary[] = [
  { pkg: '@ffmpeg-installer/linux-x64', file: 'ffmpeg' },
  { pkg: '@ffprobe-installer/linux-x64', file: 'ffprobe' },
];

function packageDir(pkg: string): string {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    // npm installs these optional dependencies only on linux-x64 hosts.
    throw new Error(
      `ffmpeg layer: ${pkg} is not installed (npm installs it only on linux-x64). ` +
        `On another platform run: npm install --no-save --force ${BINARIES.map((b) => b.pkg).join(' ')}`,
    );
  }
}

/** Versions of the shipped binaries: the layer's asset hash, so unchanged binaries are not re-uploaded or re-copied. */
function binariesFingerprint(): string {
  return BINARIES.map((b) => {
    const meta = JSON.parse(fs.readFileSync(path.join(packageDir(b.pkg), 'package.json'), 'utf8')) as { version: string };
    return `${b.pkg}@${meta.version}`;
  }).join(',');
}

/** Copies the binaries to <outputDir>/bin, executable by the Lambda's non-root user. */
export function bundleFfmpegLayer(outputDir: string): void {
  const binDir = path.join(outputDir, 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  for (const b of BINARIES) {
    const target = path.join(binDir, b.file);
    fs.copyFileSync(path.join(packageDir(b.pkg), b.file), target);
    // ffprobe ships as 0744: Lambda runs the function as a non-root user, which needs o+x.
    fs.chmodSync(target, 0o755);
  }
}

export class FfmpegLayer extends Construct {
  readonly layer: lambda.LayerVersion;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const fingerprint = binariesFingerprint();
    this.layer = hostBundledLayer(this, 'Layer', {
      description: `ffmpeg and ffprobe (static linux-x64) at /opt/bin: ${fingerprint}`,
      sourceDir: packageDir(BINARIES[0].pkg),
      // 'v1' is this layout (bin/ffmpeg, bin/ffprobe): bump it when the layout changes.
      assetHash: `ffmpeg-layer-v1:${fingerprint}`,
      bundle: bundleFfmpegLayer,
    });
  }
}
