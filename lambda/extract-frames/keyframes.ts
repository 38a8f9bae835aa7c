/**
 * How far apart the keyframes are: what one seek costs (ffmpeg decodes from the keyframe before
 * the sample). Read from the first packets of the stream only (their flags and times: no decoding),
 * so it costs one short read from the start of the file.
 */
import { inputArgs } from './input-restrictions';
import { runProcess } from './process';

export interface KeyframeSpacing {
  /** Mean spacing between the keyframes seen, seconds; undefined when fewer than two were seen. */
  seconds?: number;
  /** With fewer than two keyframes: the spacing is at least this (the span of the packets read). */
  atLeastSeconds?: number;
  keyframes: number;
  packets: number;
}

/** Pure: ffprobe's packets (pts_time, flags) → keyframe spacing. */
export function keyframeSpacing(packets: readonly { pts_time?: string; flags?: string }[]): KeyframeSpacing {
  const times = packets.map((p) => Number(p.pts_time)).filter(Number.isFinite);
  const keys = packets
    .filter((p) => p.flags?.startsWith('K'))
    .map((p) => Number(p.pts_time))
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (keys.length >= 2) return { seconds: (keys[keys.length - 1] - keys[0]) / (keys.length - 1), keyframes: keys.length, packets: packets.length };
  const span = times.length ? Math.max(...times) - Math.min(...times) : 0;
  return { atLeastSeconds: span, keyframes: keys.length, packets: packets.length };
}

/** How many packets to read: about `seconds` of video at its frame rate, within [60, 900]. */
export function packetsToRead(frameRate: number | undefined, seconds = 21): number {
  return Math.max(60, Math.min(900, Math.ceil((frameRate ?? 30) * seconds)));
}

/** Reads the first `packets` packets of the stream; undefined when ffprobe cannot (the caller then assumes nothing). */
export async function probeKeyframeSpacing(ffprobe: string, input: string, streamIndex: number, packets: number, demuxer?: string, timeoutMs = 60_000): Promise<KeyframeSpacing | undefined> {
  const args = ['-v', 'error', ...inputArgs(input, demuxer), '-select_streams', String(streamIndex), '-read_intervals', `%+#${packets}`, '-show_entries', 'packet=pts_time,flags', '-print_format', 'json'];
  args.push(input);
  const r = await runProcess(ffprobe, args, { timeoutMs });
  if (r.code !== 0 || r.timedOut) return undefined;
  try {
    const json = JSON.parse(r.stdout.toString('utf8')) as { packets?: { pts_time?: string; flags?: string }[] };
    return keyframeSpacing(json.packets ?? []);
  } catch {
    return undefined;
  }
}
