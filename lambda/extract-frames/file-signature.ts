/**
 * What a file is, from its first bytes. ffprobe picks the demuxer from the name's extension when
 * the content is not recognisable, so random bytes named .mp4 would otherwise be reported as a
 * "truncated MP4": sniffing first lets the failure reason say what the file really is.
 */
export type FileKind = 'empty' | 'iso-bmff' | 'matroska' | 'avi' | 'mpeg-ts' | 'mpeg-ps' | 'flv' | 'ogg' | 'png' | 'jpeg' | 'gif' | 'webp' | 'bmp' | 'tiff' | 'pdf' | 'zip' | 'playlist' | 'unknown';

export interface FileSignature {
  kind: FileKind;
  /** Human name, e.g. "PNG image". */
  label: string;
  /** Whether a video container could start like this. */
  video: boolean;
}

/** Boxes that can open an ISO-BMFF (MP4/MOV) file. */
const BMFF_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid', 'styp', 'sidx', 'moof']);

/** Enough for an MPEG-TS file's second sync byte (offset 188; 196 in a 192-byte-packet M2TS). */
export const SNIFF_BYTES = 512;

/** MPEG transport stream: sync bytes 0x47 every 188 bytes, or every 192 after a 4-byte timecode (M2TS, AVCHD .mts). */
function isTransportStream(head: Buffer): boolean {
  const syncAt = (offset: number, packet: number) => head.length >= offset + 2 * packet + 1 && [0, 1, 2].every((k) => head[offset + k * packet] === 0x47);
  return syncAt(0, 188) || syncAt(4, 192);
}

export function sniff(head: Buffer): FileSignature {
  const ascii = (start: number, end: number) => head.subarray(start, end).toString('latin1');
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (head.length === 0) return { kind: 'empty', label: 'empty file (0 bytes)', video: false };
  if (head.length >= 8 && BMFF_BOXES.has(ascii(4, 8))) return { kind: 'iso-bmff', label: 'MP4/QuickTime', video: true };
  if (starts(0x1a, 0x45, 0xdf, 0xa3)) return { kind: 'matroska', label: 'Matroska/WebM', video: true };
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'AVI ') return { kind: 'avi', label: 'AVI', video: true };
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return { kind: 'webp', label: 'WebP image', video: false };
  if (starts(0x00, 0x00, 0x01, 0xba)) return { kind: 'mpeg-ps', label: 'MPEG program stream', video: true };
  if (ascii(0, 3) === 'FLV') return { kind: 'flv', label: 'FLV', video: true };
  if (ascii(0, 4) === 'OggS') return { kind: 'ogg', label: 'Ogg', video: true };
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return { kind: 'png', label: 'PNG image', video: false };
  if (starts(0xff, 0xd8, 0xff)) return { kind: 'jpeg', label: 'JPEG image', video: false };
  // An animated GIF is a video (ffmpeg decodes its frames with their delays); a single-frame one is
  // refused after the probe (failure-reasons.ts checkProbe).
  if (ascii(0, 4) === 'GIF8') return { kind: 'gif', label: 'GIF animation', video: true };
  if (isTransportStream(head)) return { kind: 'mpeg-ts', label: 'MPEG transport stream', video: true };
  if (/^(\ufeff)?#EXTM3U/.test(ascii(0, 16))) return { kind: 'playlist', label: 'HLS playlist', video: false };
  if (/^(\ufeff)?ffconcat version/.test(ascii(0, 24))) return { kind: 'playlist', label: 'ffmpeg concat playlist', video: false };
  if (ascii(0, 2) === 'BM') return { kind: 'bmp', label: 'BMP image', video: false };
  if (ascii(0, 4) === 'II*\u0000' || ascii(0, 4) === 'MM\u0000*') return { kind: 'tiff', label: 'TIFF image', video: false };
  if (ascii(0, 5) === '%PDF-') return { kind: 'pdf', label: 'PDF document', video: false };
  if (starts(0x50, 0x4b, 0x03, 0x04)) return { kind: 'zip', label: 'ZIP archive', video: false };
  return { kind: 'unknown', label: 'unrecognised content', video: false };
}
