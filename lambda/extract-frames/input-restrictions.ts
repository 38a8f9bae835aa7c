/**
 * What ffmpeg/ffprobe may read for one upload. Uploads are untrusted: a file that is really an
 * HLS or concat playlist (whatever its suffix), or a container naming `file:` or other URLs, could
 * make a demuxer open other inputs. So every run is given
 *  - `-protocol_whitelist` with only the protocols of the job's own input (the presigned HTTPS GET:
 *    https,tls,tcp; a local path: file), and
 *  - `-f <demuxer>` fixed to the container the first bytes were sniffed as (file-signature.ts), so
 *    ffmpeg never guesses a playlist demuxer from content or suffix.
 */
import type { FileKind } from './file-signature';

/** The demuxer for each container the sniff recognises as a video (unknown content is never probed). */
const DEMUXERS: Partial<Record<FileKind, string>> = {
  'iso-bmff': 'mov',
  matroska: 'matroska',
  avi: 'avi',
  'mpeg-ts': 'mpegts',
  'mpeg-ps': 'mpeg',
  flv: 'flv',
  ogg: 'ogg',
  gif: 'gif',
};

export function demuxerFor(kind: FileKind): string | undefined {
  return DEMUXERS[kind];
}

/** The protocols reading `input` needs, and nothing else. */
export function protocolsFor(input: string): string {
  if (/^https:/i.test(input)) return 'https,tls,tcp';
  if (/^http:/i.test(input)) return 'http,tcp';
  return 'file';
}

/** Input options for ffmpeg/ffprobe, placed before `-i`/the input. */
export function inputArgs(input: string, demuxer?: string): string[] {
  const args = ['-protocol_whitelist', protocolsFor(input)];
  if (/^https?:/i.test(input)) args.push('-rw_timeout', '30000000');
  if (demuxer) args.push('-f', demuxer);
  return args;
}
