/**
 * The optional per-video sidecar `<stem>.questions.json` next to the upload: extra questions and
 * per-video overrides (frames, pooling, rope, maxNewTokens), validated with the contracts' schema.
 * A sidecar that is not valid fails the job with the offending field named.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isS3NotFound } from '../../lib/aws-clients';
import { SidecarSchema, type Sidecar } from '../../lib/contracts/questions';
import { sidecarKeyFor } from '../../lib/contracts/s3-layout';
import { ContractError, parseOrThrow } from '../../lib/contracts/validate';
import { PermanentInputError } from './failure-reasons';

export const MAX_SIDECAR_BYTES = 256 * 1024;

/** Pure: the sidecar's text to a Sidecar, or a PermanentInputError naming what is wrong. */
export function parseSidecar(text: string, key: string): Sidecar {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PermanentInputError(`sidecar ${key} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseOrThrow(SidecarSchema, json, `sidecar ${key}`);
  } catch (e) {
    if (e instanceof ContractError) throw new PermanentInputError(e.message);
    throw e;
  }
}

export async function loadSidecar(s3: S3Client, bucket: string, videoKey: string): Promise<{ key: string; sidecar?: Sidecar }> {
  const key = sidecarKeyFor(videoKey);
  let text: string;
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if ((r.ContentLength ?? 0) > MAX_SIDECAR_BYTES) {
      // Unread, the response would hold its pooled connection.
      (r.Body as { destroy?: () => void } | undefined)?.destroy?.();
      throw new PermanentInputError(`sidecar ${key} is larger than ${MAX_SIDECAR_BYTES} bytes`);
    }
    text = await r.Body!.transformToString('utf8');
  } catch (e) {
    if (isS3NotFound(e)) return { key };
    throw e;
  }
  return { key, sidecar: parseSidecar(text, key) };
}
