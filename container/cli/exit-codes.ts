/** Exit codes of every `longsight` command. */
export const EXIT = {
  ok: 0,
  /** The command ran and something failed (a job FAILED, an AWS error, a broken input). */
  failed: 1,
  /** The command was called wrongly (unknown option, bad value). */
  usage: 2,
  /** What was asked for does not exist (no such job, no answers yet). */
  notFound: 3,
} as const;

export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failed) {
    super(message);
    this.name = 'CliError';
  }
}
