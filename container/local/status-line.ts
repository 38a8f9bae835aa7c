/**
 * One progress line that rewrites itself on a terminal, and, when output is not a terminal (CI,
 * a pipe), is printed as a plain line at most every few seconds. Other lines print above it.
 */
export class StatusLine {
  private current = '';
  private lastPlain = 0;
  private lastPlainText = '';
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 3000,
  ) {}

  private get tty(): boolean {
    return Boolean(this.stream.isTTY);
  }

  update(text: string): void {
    this.current = text;
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${text}`);
    } else if (text !== this.lastPlainText && Date.now() - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = Date.now();
      this.lastPlainText = text;
      this.stream.write(`${text}\n`);
    }
  }

  /** Prints `text` (to `out`) above the status line. */
  println(text: string, out: NodeJS.WriteStream = process.stdout): void {
    if (this.tty) this.stream.write('\r\x1b[2K');
    out.write(`${text}\n`);
    if (this.tty && this.current) this.stream.write(this.current);
  }

  done(): void {
    if (this.tty && this.current) this.stream.write('\r\x1b[2K');
    this.current = '';
  }
}
