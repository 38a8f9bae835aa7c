/**
 * The reference itself: Pillow's Image.resize and transformers' rescale/normalise steps (numpy
 * float32), run by Debian's python3-pil / python3-numpy (installed by .ci/run). Tests compare our
 * preprocessing against this, on frames they generate.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = `
import json, sys
import numpy as np
from PIL import Image
for job in json.load(sys.stdin):
    im = Image.frombytes('RGB', (job['w'], job['h']), open(job['in'], 'rb').read())
    out = im.resize((job['ow'], job['oh']), job['filter'])
    open(job['out'], 'wb').write(out.tobytes())
    n = job.get('normalise')
    if n:
        # transformers' image_transforms.rescale (float64 product, stored float32) then normalize (float32).
        a = np.array(out)
        a = (a.astype(np.float64) * n['rescale']).astype(np.float32)
        a = (a - np.array(n['mean'], dtype=np.float32)) / np.array(n['std'], dtype=np.float32)
        open(job['out'] + '.f32', 'wb').write(np.ascontiguousarray(a.transpose(2, 0, 1)).astype('<f4').tobytes())
`;

/** A python3 that has Pillow: Debian's (/usr/bin) first, since a pyenv shim on PATH may lack it. */
export function pillowPython(): string {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import PIL, numpy'], { stdio: 'ignore' });
      return py;
    } catch {
      /* next */
    }
  }
  throw new Error('no python3 with Pillow and numpy: apt-get install python3-pil python3-numpy (.ci/run does)');
}

export interface PillowJob {
  rgb: Uint8Array;
  width: number;
  height: number;
  outWidth: number;
  outHeight: number;
  /** PIL filter id (3 = BICUBIC). */
  filter?: number;
  normalise?: { rescale: number; mean: readonly number[]; std: readonly number[] };
}

export interface PillowResult {
  rgb: Buffer;
  /** CHW float32, when normalise was asked. */
  pixels?: Float32Array;
}

/** Runs every job through Pillow in one python process. */
export function pillowResize(jobs: readonly PillowJob[]): PillowResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'longsight-pillow-'));
  try {
    const spec = jobs.map((j, i) => {
      writeFileSync(join(dir, `in-${i}.raw`), j.rgb);
      return { in: join(dir, `in-${i}.raw`), out: join(dir, `out-${i}.raw`), w: j.width, h: j.height, ow: j.outWidth, oh: j.outHeight, filter: j.filter ?? 3, normalise: j.normalise };
    });
    execFileSync(pillowPython(), ['-c', SCRIPT], { input: JSON.stringify(spec), maxBuffer: 64 * 1024 * 1024 });
    return spec.map((s) => {
      const rgb = readFileSync(s.out);
      const f32 = `${s.out}.f32`;
      if (!existsSync(f32)) return { rgb };
      const b = readFileSync(f32);
      return { rgb, pixels: new Float32Array(b.buffer, b.byteOffset, b.length / 4) };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Largest absolute difference and the fraction of equal values. */
export function compareBytes(ours: ArrayLike<number>, ref: ArrayLike<number>): { maxDiff: number; equalFraction: number } {
  if (ours.length !== ref.length) throw new Error(`lengths differ: ${ours.length} vs ${ref.length}`);
  let maxDiff = 0;
  let equal = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (d === 0) equal++;
    else if (d > maxDiff) maxDiff = d;
  }
  return { maxDiff, equalFraction: equal / ref.length };
}
