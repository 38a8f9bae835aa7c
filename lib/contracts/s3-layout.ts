/**
 * S3 layout. Uploads live anywhere in the video bucket; Longsight writes only under `frames/<jobId>/`.
 * Frame keys are fixed by index, so a retried extraction overwrites rather than mixes.
 */
export const FRAMES_PREFIX = 'frames/';

/** Video suffixes that trigger extraction (matched case-insensitively). */
export const VIDEO_SUFFIXES = ['.mp4', '.mov', '.mkv', '.webm', '.avi', '.m4v'] as const;
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

/** `talks/a.mp4` → `talks/a.questions.json` (the video's extension replaced). */
export function sidecarKeyFor(videoKey: string): string {
  const slash = videoKey.lastIndexOf('/');
  const dot = videoKey.lastIndexOf('.');
  const stem = dot > slash ? videoKey.slice(0, dot) : videoKey;
  return `${stem}${SIDECAR_SUFFIX}`;
}

/** Every case variant of the suffixes, for S3 notification filters (which are case-sensitive). */
export function suffixCaseVariants(): string[] {
  const out = new Set<string>();
  for (const s of VIDEO_SUFFIXES) {
    out.add(s);
    out.add(s.toUpperCase());
    out.add(s[0] + s[1].toUpperCase() + s.slice(2)); // .Mp4
  }
  return [...out];
}
