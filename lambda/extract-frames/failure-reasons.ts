/**
 * Permanent input problems, in words a person understands. A PermanentInputError ends the job as
 * FAILED with its reason (no retry, no message); anything else thrown is transient and retried.
 */
import type { ExtractionConfig } from '../../lib/contracts/env-config';
import type { FileSignature } from './file-signature';
import type { ProbeResult } from './probe';

export class PermanentInputError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'PermanentInputError';
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

/** Before reading anything: the object's size against the limit. */
export function checkSize(sizeBytes: number, limits: Pick<ExtractionConfig, 'maxBytes'>): void {
  if (sizeBytes === 0) throw new PermanentInputError('empty file (0 bytes)');
  if (sizeBytes > limits.maxBytes) throw new PermanentInputError(`file size ${formatBytes(sizeBytes)} exceeds the limit of ${formatBytes(limits.maxBytes)}`);
}

/**
 * From the first bytes: files that are not a video container we read. Unrecognised content is not
 * handed to ffprobe at all (it would guess a demuxer, and some demuxers open other inputs).
 */
export function checkSignature(sig: FileSignature, head?: Buffer): void {
  if (sig.kind === 'empty') throw new PermanentInputError('empty file (0 bytes)');
  if (sig.kind === 'unknown') throw new PermanentInputError(reasonForProbeFailure('', sig, head));
  if (!sig.video) throw new PermanentInputError(`file is not a video (${sig.label})`);
}

/** ffprobe could not open the file: why, given what the first bytes said. */
export function reasonForProbeFailure(stderr: string, sig: FileSignature, head?: Buffer): string {
  if (sig.kind === 'unknown') {
    const bytes = head ? `: first bytes ${[...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}` : '';
    return `file is not a video (unrecognised content${bytes})`;
  }
  if (/moov atom not found/i.test(stderr)) {
    return sig.kind === 'iso-bmff' ? 'truncated file: moov atom missing (the MP4 index was never written or was cut off)' : `corrupt ${sig.label} file: no MP4 index (moov atom)`;
  }
  if (/EBML header parsing failed|Invalid EBML/i.test(stderr)) return 'corrupt Matroska/WebM file: EBML header unreadable';
  if (/Invalid data found when processing input/i.test(stderr)) return `corrupt or unsupported ${sig.label} file: ffprobe found no readable streams`;
  const last = stderr.trim().split('\n').filter(Boolean).slice(-1)[0];
  return `video could not be read: ${last ?? 'ffprobe failed'}`;
}

/** ffprobe died of a signal (a crash of that build on this file): say so, with the second prober's result if one ran. */
export function reasonForProbeCrash(signal: string, second?: { signal?: string | null; stderr: string }): string {
  const head = `video could not be read: ffprobe was killed by ${signal} (it crashed on this file)`;
  if (!second) return head;
  const how = second.signal ? `was killed by ${second.signal} too` : `failed too (${second.stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? 'no message'})`;
  return `${head}; the second ffprobe ${how}`;
}

/** After probing, before decoding: the stream exists, is a video, and is within the limits. */
export function checkProbe(probe: ProbeResult, limits: Pick<ExtractionConfig, 'maxDurationSeconds' | 'maxWidth' | 'maxHeight'>, sig: FileSignature): { durationSeconds: number } {
  if (/(^|,)(image2|\w+_pipe)(,|$)/.test(probe.formatName)) {
    const codec = probe.video?.codec?.toUpperCase() ?? 'image';
    throw new PermanentInputError(`file is not a video (${codec} image)`);
  }
  const v = probe.video;
  if (sig.kind === 'gif' && v?.frameCountExact && v.frameCount === 1) throw new PermanentInputError('file is not a video (a single-frame GIF image)');
  if (!v) {
    const others = probe.otherStreams.map((s) => `${s.type} ${s.codec}`).join(', ');
    throw new PermanentInputError(`no video stream${others ? ` (the file has only: ${others})` : ''}`);
  }
  if (v.attachedPicture) throw new PermanentInputError(`no video stream (only a cover picture, ${v.codec})`);
  if (v.codec === 'unknown' || v.codec === 'none') {
    const what = v.codecTag ? `fourcc "${v.codecTag}"` : v.codecLongName ?? 'not identified';
    throw new PermanentInputError(`unsupported codec (${what}) in ${sig.label} file`);
  }
  if (!(v.width > 0 && v.height > 0)) throw new PermanentInputError(`video stream has no picture size (codec ${v.codec})`);
  const fits = (w: number, h: number) => (w <= limits.maxWidth && h <= limits.maxHeight) || (h <= limits.maxWidth && w <= limits.maxHeight);
  if (!fits(v.displayWidth, v.displayHeight)) {
    throw new PermanentInputError(`resolution exceeds limit: ${v.displayWidth}x${v.displayHeight} is larger than ${limits.maxWidth}x${limits.maxHeight}`);
  }
  let duration = v.durationSeconds ?? probe.durationSeconds;
  // A single-frame video may carry no duration: it lasts one frame.
  if ((duration === undefined || duration <= 0) && v.frameCountExact && v.frameCount === 1 && v.frameRate) duration = 1 / v.frameRate;
  if (duration === undefined || !Number.isFinite(duration) || duration <= 0) throw new PermanentInputError('duration 0: the video stream has no frames with timestamps');
  if (duration > limits.maxDurationSeconds) {
    throw new PermanentInputError(`duration ${formatDuration(duration)} exceeds the limit of ${formatDuration(limits.maxDurationSeconds)}`);
  }
  return { durationSeconds: duration };
}

/** ffmpeg decoded nothing at all: say why, from its last words. */
export function reasonForNoFrames(why: string, codec: string): string {
  if (/Decoder \(codec (\w+)\) not found|decoder.*not found/i.test(why)) return `unsupported codec ${codec}: this ffmpeg has no decoder for it`;
  if (/Invalid data|corrupt|error while decoding|missing picture/i.test(why)) return `no decodable video frames: the ${codec} stream is corrupt (${why})`;
  return `no decodable video frames (${why || 'the stream ended before the first frame'})`;
}

/**
 * Some frames decoded, most did not: the data ends (or is corrupt) early. Fewer than half the
 * samples is a failure: answers about a fragment would be presented as answers about the video.
 */
export function checkCoverage(decoded: number, sampled: number, lastTimestamp: number, durationSeconds: number): void {
  if (sampled > 1 && decoded * 2 < sampled) {
    throw new PermanentInputError(
      `truncated or corrupt file: only ${decoded} of ${sampled} sampled frames could be decoded (the last at ${lastTimestamp.toFixed(1)} s of the ${durationSeconds.toFixed(1)} s the container declares)`,
    );
  }
}
