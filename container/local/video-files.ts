/**
 * The videos a `longsight run` was given: files, and folders searched for video suffixes (their
 * subfolders too with `recursive`). Each gets the S3 key it is uploaded under: a file's base name,
 * or, for a folder's videos, the folder's name and the path inside it (`talks/2024/a.mp4`), made
 * unique when two would collide.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import { isVideoKey, VIDEO_SUFFIXES } from '../../lib/contracts';
import { UsageError } from './usage-error';

export interface VideoInput {
  file: string;
  key: string;
}

/** Video files under `dir` in name order; subfolders (not hidden ones) only when `recursive`. */
function videosIn(dir: string, recursive: boolean, out: string[], skipped: { folders: number }): void {
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue; // a dangling link
    }
    if (st.isDirectory()) {
      if (recursive) videosIn(p, recursive, out, skipped);
      else skipped.folders++;
    } else if (st.isFile() && isVideoKey(name)) out.push(p);
  }
}

export function findVideos(args: string[], opts: { recursive?: boolean } = {}): VideoInput[] {
  const found: { file: string; key: string }[] = [];
  const seen = new Set<string>();
  for (const arg of args) {
    const p = resolve(arg);
    if (!existsSync(p)) throw new UsageError(`no such video file or folder: ${p}`);
    const st = statSync(p);
    if (st.isDirectory()) {
      const files: string[] = [];
      const skipped = { folders: 0 };
      videosIn(p, Boolean(opts.recursive), files, skipped);
      if (files.length === 0) {
        const hint = skipped.folders > 0 ? `; it has ${skipped.folders} subfolder${skipped.folders === 1 ? '' : 's'}: add -r to search them` : '';
        throw new UsageError(`no videos in ${p} (looked for ${VIDEO_SUFFIXES.join(' ')}${hint})`);
      }
      for (const f of files) {
        if (seen.has(f)) continue;
        seen.add(f);
        found.push({ file: f, key: [basename(p), ...relative(p, f).split(sep)].join('/') });
      }
    } else {
      if (!st.isFile()) throw new UsageError(`not a file or folder: ${p}`);
      if (!isVideoKey(p)) throw new UsageError(`${p}: not a video suffix Longsight extracts (${VIDEO_SUFFIXES.join(', ')})`);
      if (seen.has(p)) continue;
      seen.add(p);
      found.push({ file: p, key: basename(p) });
    }
  }
  return uniqueKeys(found);
}

/** Keys made unique: a second `a.mp4` becomes `2-a.mp4` (in its folder part, if any). */
export function uniqueKeys(inputs: VideoInput[]): VideoInput[] {
  const used = new Set<string>();
  return inputs.map(({ file, key }) => {
    const slash = key.lastIndexOf('/');
    const dir = key.slice(0, slash + 1);
    const name = key.slice(slash + 1);
    let k = key;
    for (let i = 2; used.has(k); i++) k = `${dir}${i}-${name}`;
    used.add(k);
    return { file, key: k };
  });
}
