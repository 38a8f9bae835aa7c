/**
 * ffprobe: what the container and its first video stream say (duration, size, rotation, codec,
 * frame rate, frame count where the container records it). Reads only the header through the URL.
 */
import { inputArgs } from './input-restrictions';
import { runProcess } from './process';

export interface VideoStreamInfo {
  index: number;
  codec: string;
  codecLongName?: string;
  /** The container's codec tag (fourcc), e.g. avc1, hvc1: names a codec ffprobe does not know. */
  codecTag?: string;
  profile?: string;
  pixFmt?: string;
  /** Stored (coded display) size, before rotation. */
  width: number;
  height: number;
  /** Clockwise rotation to apply for display: 0, 90, 180 or 270. */
  rotation: 0 | 90 | 180 | 270;
  /** Size as displayed (after rotation). */
  displayWidth: number;
  displayHeight: number;
  /** Average frame rate (frames per second), when known. */
  frameRate?: number;
  /** Frames in the stream: from the container (exact) or duration x frame rate (estimate). */
  frameCount?: number;
  frameCountExact: boolean;
  durationSeconds?: number;
  startTime: number;
  /** An attached picture (cover art) rather than a video track. */
  attachedPicture: boolean;
}

export interface ProbeResult {
  formatName: string;
  formatLongName?: string;
  durationSeconds?: number;
  startTime: number;
  sizeBytes?: number;
  video?: VideoStreamInfo;
  /** Codec names of the other streams (audio, subtitles, data), for failure messages. */
  otherStreams: { type: string; codec: string }[];
}

interface RawStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  codec_long_name?: string;
  codec_tag_string?: string;
  profile?: string;
  pix_fmt?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  start_time?: string;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number | string }[];
  disposition?: { attached_pic?: number };
}

interface RawProbe {
  streams?: RawStream[];
  format?: { format_name?: string; format_long_name?: string; duration?: string; start_time?: string; size?: string; tags?: Record<string, string> };
}

const num = (s: string | number | undefined): number | undefined => {
  if (s === undefined || s === null || s === 'N/A' || s === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
};

function rate(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const [a, b] = s.split('/').map(Number);
  if (!b || !Number.isFinite(a) || !Number.isFinite(b) || a <= 0) return undefined;
  return a / b;
}

/**
 * Clockwise display rotation. The display matrix (side data) wins: ffprobe reports its angle
 * counter-clockwise (av_display_rotation_get), so clockwise is its negation. Older files carry
 * only the `rotate` tag, which is already clockwise.
 */
export function rotationOf(s: Pick<RawStream, 'side_data_list' | 'tags'>): 0 | 90 | 180 | 270 {
  const matrix = s.side_data_list?.find((d) => d.side_data_type === 'Display Matrix' && d.rotation !== undefined);
  let cw: number | undefined;
  if (matrix) cw = -Number(matrix.rotation);
  else if (s.tags?.rotate !== undefined) cw = Number(s.tags.rotate);
  if (cw === undefined || !Number.isFinite(cw)) return 0;
  const snapped = ((Math.round(cw / 90) * 90) % 360 + 360) % 360;
  return snapped as 0 | 90 | 180 | 270;
}

/** Pure: ffprobe's JSON (-show_format -show_streams) to what the Lambda needs. */
export function parseProbe(json: unknown): ProbeResult {
  const raw = json as RawProbe;
  const format = raw.format ?? {};
  const streams = raw.streams ?? [];
  const startTime = num(format.start_time) ?? 0;
  const formatDuration = num(format.duration);
  const videoStreams = streams.filter((s) => s.codec_type === 'video');
  // A real video track beats cover art; among several, the first (ffmpeg's default choice).
  const v = videoStreams.find((s) => !s.disposition?.attached_pic) ?? videoStreams[0];
  let video: VideoStreamInfo | undefined;
  if (v) {
    const rotation = rotationOf(v);
    const width = v.width ?? 0;
    const height = v.height ?? 0;
    const frameRate = rate(v.avg_frame_rate) ?? rate(v.r_frame_rate);
    const duration = num(v.duration) ?? formatDuration;
    const nb = num(v.nb_frames) ?? num(v.tags?.NUMBER_OF_FRAMES) ?? num(v.tags?.['NUMBER_OF_FRAMES-eng']);
    const estimate = duration !== undefined && duration > 0 && frameRate ? Math.max(1, Math.round(duration * frameRate)) : undefined;
    video = {
      index: v.index,
      codec: v.codec_name ?? 'unknown',
      codecLongName: v.codec_long_name,
      codecTag: v.codec_tag_string && !/^\[/.test(v.codec_tag_string) ? v.codec_tag_string : undefined,
      profile: v.profile,
      pixFmt: v.pix_fmt,
      width,
      height,
      rotation,
      displayWidth: rotation % 180 === 0 ? width : height,
      displayHeight: rotation % 180 === 0 ? height : width,
      frameRate,
      frameCount: nb && nb > 0 ? nb : estimate,
      frameCountExact: Boolean(nb && nb > 0),
      durationSeconds: duration,
      startTime: num(v.start_time) ?? startTime,
      attachedPicture: Boolean(v.disposition?.attached_pic),
    };
  }
  return {
    formatName: format.format_name ?? 'unknown',
    formatLongName: format.format_long_name,
    durationSeconds: formatDuration,
    startTime,
    sizeBytes: num(format.size),
    video,
    otherStreams: streams.filter((s) => s !== v).map((s) => ({ type: s.codec_type ?? 'unknown', codec: s.codec_name ?? 'unknown' })),
  };
}

export class ProbeFailure extends Error {
  constructor(
    readonly stderr: string,
    readonly exitCode: number | null,
    readonly timedOut: boolean,
    /** Set when ffprobe was killed by a signal (SIGSEGV: it crashed) other than our timeout's. */
    readonly signal?: NodeJS.Signals | null,
  ) {
    super(`ffprobe failed (${signal && !timedOut ? `killed by ${signal}` : `exit ${exitCode}`}${timedOut ? ', timed out' : ''}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    this.name = 'ProbeFailure';
  }
}

/** Probes `input` with its protocols restricted and, when given, the demuxer fixed (input-restrictions.ts). */
export async function probeVideo(ffprobe: string, input: string, opts: { timeoutMs?: number; demuxer?: string } = {}): Promise<ProbeResult> {
  const args = ['-v', 'error', ...inputArgs(input, opts.demuxer), '-print_format', 'json', '-show_format', '-show_streams', input];
  const r = await runProcess(ffprobe, args, { timeoutMs: opts.timeoutMs ?? 60_000 });
  if (r.code !== 0 || r.timedOut) throw new ProbeFailure(r.stderr, r.code, r.timedOut, r.timedOut ? undefined : r.signal);
  let json: unknown;
  try {
    json = JSON.parse(r.stdout.toString('utf8'));
  } catch {
    throw new ProbeFailure(`ffprobe printed no JSON. ${r.stderr}`, r.code, false);
  }
  return parseProbe(json);
}
