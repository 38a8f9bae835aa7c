/**
 * Where a seek lands. In containers with an index (MP4/MOV, Matroska/WebM, AVI, FLV) ffmpeg's input
 * seek lands on the keyframe at or before the time and decodes forward to it: exact. MPEG-TS and
 * MPEG-PS have no index: the demuxer bisects the file by timestamps and lands on a packet near the
 * time, usually after the keyframe, and the decoder drops every frame up to the next keyframe. With
 * a 10-s keyframe interval, a seek to 15 s returns the frame at 20 s, and one into the last interval
 * returns nothing (measured on ffmpeg 5.1; test/lambda/seek-accuracy.test.ts).
 *
 * For those, each decode starts a lead before the sample, longer than a keyframe interval, so a
 * keyframe lies between where the demuxer lands and the sample; `select` keeps the first frame at
 * or after the sample time (frame-extractor.ts).
 */

/** ffmpeg demuxers whose input seek is not keyframe-exact. */
const INEXACT_SEEK_DEMUXERS = new Set(['mpegts', 'mpeg']);

export function seeksExactly(demuxer: string | undefined): boolean {
  return !demuxer || !INEXACT_SEEK_DEMUXERS.has(demuxer);
}

/**
 * Seconds to start decoding ahead of a sample: 0 where seeks are exact; a keyframe interval and a
 * quarter plus 1 s where they are not (margin for uneven intervals); Infinity (decode from the
 * start) where they are not and the interval is unknown (fewer than two keyframes in the probe).
 */
export function seekLeadSeconds(demuxer: string | undefined, keyframeSeconds: number | undefined): number {
  if (seeksExactly(demuxer)) return 0;
  if (keyframeSeconds === undefined || !(keyframeSeconds > 0)) return Infinity;
  return 1.25 * keyframeSeconds + 1;
}
