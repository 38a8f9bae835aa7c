/**
 * How the worker classifies what went wrong with a job (the failure policy):
 *  - 'permanent': the job can never succeed (invalid message or manifest, undecodable input after
 *    the fallback): FAILED now, message deleted, no retry.
 *  - 'fallback': the engine ran out of memory or the sequence exceeds the configured budget: retry
 *    once in the same delivery with settings.fallback (a stronger pooling schedule / fewer frames).
 *  - 'aborted': the worker is stopping (SIGTERM) or lost the job to another delivery.
 *  - 'transient': anything else (throttling, network, a server error, an unexpected exception):
 *    the message is left for redelivery; the delivery that reaches maxReceiveCount marks the job
 *    FAILED with the last reason and the queue moves the message to the DLQ.
 */
import { ContractError } from '../../lib/contracts';
import { OutOfMemoryError, SequenceBudgetError } from '../runtime/engine';

/** An error no retry can fix; its message is the job's FAILED reason. */
export class PermanentJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentJobError';
  }
}

/** Thrown into a job when the worker stops or another delivery owns the job now. */
export class JobAbandonedError extends Error {
  constructor(readonly why: 'stopping' | 'lost-ownership', message: string) {
    super(message);
    this.name = 'JobAbandonedError';
  }
}

export type FailureKind = 'permanent' | 'fallback' | 'aborted' | 'transient';

export function classifyFailure(e: unknown): FailureKind {
  if (e instanceof JobAbandonedError) return 'aborted';
  if ((e as { name?: string })?.name === 'AbortError') return 'aborted';
  if (e instanceof PermanentJobError || e instanceof ContractError) return 'permanent';
  if (e instanceof SequenceBudgetError || e instanceof OutOfMemoryError) return 'fallback';
  const name = (e as { name?: string })?.name;
  if (name === 'SequenceBudgetError' || name === 'OutOfMemoryError') return 'fallback';
  return 'transient';
}

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'SlowDown',
  'LimitExceededException',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET']);

/** True for AWS errors worth retrying in place: throttling, 5xx, and network failures. */
export function isRetryableAwsError(e: unknown): boolean {
  const err = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; cause?: unknown };
  if (!err || typeof err !== 'object') return false;
  if (err.name && THROTTLING.has(err.name)) return true;
  if (err.code && NETWORK_CODES.has(err.code)) return true;
  if (err.$retryable) return true;
  const status = err.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  // No HTTP status: the request never got an answer (connection refused or reset, socket timeout),
  // whatever wrapper the SDK put around the socket error.
  if (status === undefined && /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|TimeoutError|network|getaddrinfo/i.test(`${err.name} ${(e as Error).message}`)) return true;
  if (err.cause && err.cause !== e) return isRetryableAwsError(err.cause);
  return false;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return `${e.name === 'Error' ? '' : e.name + ': '}${e.message}`;
  return String(e);
}
