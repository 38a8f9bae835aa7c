/** A writable stream that keeps what is written (a stand-in for stdout/stderr, not a terminal). */
import { Writable } from 'node:stream';

export function captureStream(onWrite?: (text: string) => void): NodeJS.WriteStream & { text(): string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      onWrite?.(chunks[chunks.length - 1]);
      cb();
    },
  });
  return Object.assign(w, { text: () => chunks.join(''), isTTY: false }) as unknown as NodeJS.WriteStream & { text(): string };
}
