/**
 * One progress line that rewrites itself on a terminal, and, when output is not a terminal (CI,
 * a pipe), is printed as a plain line when it says something new (at most every few seconds; an
 * ETA counting down alone is not new). Other lines print above it.
 */
export class StatusLine {
  private current = '';
  private lastPlain = 0;
  private lastPlainText = '';
  private lastLine = '';
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 3000,
    private readonly quietMs = 30_000,
  ) {}

  private get tty(): boolean {
    return Boolean(this.stream.isTTY);
  }

  /**
   * On a terminal: redrawn in place. Otherwise a plain line when something changed beyond the ETA
   * counting down (at most every plainEveryMs), or when quietMs passed without one.
   */
  update(text: string): void {
    this.current = text;
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${text}`);
      return;
    }
    const key = text.replace(/ · ETA [^│]*/g, '');
    const since = Date.now() - this.lastPlain;
    if ((key !== this.lastPlainText && since >= this.plainEveryMs) || (text !== this.lastLine && since >= this.quietMs)) {
      this.lastPlain = Date.now();
      this.lastPlainText = key;
      this.lastLine = text;
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
