/**
 * S3 layout. Uploads live anywhere in the video bucket; Longsight writes only under
 * `frames/<jobId>/` (frames and manifest) and `index/` (the answers export, index-export.ts).
 * Frame keys are fixed by index, so a retried extraction overwrites rather than mixes. Neither
 * prefix is ever taken for uploads: the extraction and the backfill skip both.
 */
export const FRAMES_PREFIX = 'frames/';
/** The answers export: `index/profile=<profile>/dt=<YYYY-MM-DD>/<jobId>.jsonl`. */
export const INDEX_PREFIX = 'index/';

/**
 * Video suffixes that trigger extraction (matched case-insensitively). What a file is, is decided
 * by its first bytes, not by this: an animated GIF or an MPEG-TS stream under any of these is read
 * as what it is (`.gif` uploads themselves do not trigger: most are still images).
 */
export const VIDEO_SUFFIXES = ['.mp4', '.mov', '.mkv', '.webm', '.avi', '.m4v', '.ts', '.m2ts', '.mts'] as const;
export const SIDECAR_SUFFIX = '.questions.json';

export const framesPrefix = (jobId: string): string => `${FRAMES_PREFIX}${jobId}/`;
export const manifestKey = (jobId: string): string => `${framesPrefix(jobId)}manifest.json`;
export const frameKey = (jobId: string, index: number, ext: 'jpg' | 'png'): string =>
  `${framesPrefix(jobId)}frame-${String(index).padStart(5, '0')}.${ext}`;

export function isVideoKey(key: string): boolean {
  const lower = key.toLowerCase();
  return VIDEO_SUFFIXES.some((s) => lower.endsWith(s));
}

export function isUnderFrames(key: string): boolean {
  return key.startsWith(FRAMES_PREFIX);
}

export function isUnderIndex(key: string): boolean {
  return key.startsWith(INDEX_PREFIX);
}

/** `talks/a.mp4` → `talks/a.questions.json` (the video's extension replaced). */
export function sidecarKeyFor(videoKey: string): string {
  const slash = videoKey.lastIndexOf('/');
  const dot = videoKey.lastIndexOf('.');
  const stem = dot > slash ? videoKey.slice(0, dot) : videoKey;
  return `${stem}${SIDECAR_SUFFIX}`;
}

/** Every case variant of the suffixes (.mp4 .mP4 .Mp4 .MP4 …), for S3 notification filters, which are case-sensitive. */
export function suffixCaseVariants(): string[] {
  const out = new Set<string>();
  for (const suffix of VIDEO_SUFFIXES) {
    let variants = [''];
    for (const ch of suffix) variants = variants.flatMap((v) => [...new Set([v + ch.toLowerCase(), v + ch.toUpperCase()])]);
    for (const v of variants) out.add(v);
  }
  return [...out];
}
