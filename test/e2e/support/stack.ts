/**
 * The pieces of the pipeline wired in this process for tests that need to reach between them:
 * embedded AWS, the real extraction handler, and in-process workers on the real engine.
 */
import { ExtractRuntimeConfigSchema, type ExtractRuntimeConfig } from '../../../lib/contracts';
import { createExtractHandler, type ExtractHandler } from '../../../lambda/extract-frames/handler';
import { createLogger } from '../../../lib/log';
import { createOnnxEngine } from '../../../container/runtime/onnx-engine';
import type { AnswerEngine } from '../../../container/runtime/engine';
import { buildS3Event, type StoredObject as UploadedObject } from '../../../lambda/extract-frames/s3-event';
import { uploadFile } from '../../../container/local/upload';
import { startLocalAws, type LocalAws } from '../../support/local-aws';
import { tinyModelDir } from '../../worker/support/tiny-model';

export interface Rig {
  local: LocalAws;
  engine: AnswerEngine;
  handler: ExtractHandler;
  config: ExtractRuntimeConfig;
  upload(file: string, key: string): Promise<UploadedObject>;
  event(obj: UploadedObject): ReturnType<typeof buildS3Event>;
  stop(): Promise<void>;
}

export async function startRig(questions = ['What is shown?', 'Is it day or night?']): Promise<Rig> {
  const dir = await tinyModelDir();
  const local = await startLocalAws({ visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  const engine = await createOnnxEngine({ modelDir: dir, executionProvider: 'cpu', threads: 1 });
  const config = ExtractRuntimeConfigSchema.parse({ extraction: { frames: 3 }, inference: { frames: 3, maxNewTokens: 3 }, questions });
  const handler = createExtractHandler({
    clients: local.clients,
    config,
    jobsTable: local.resources.jobsTable,
    queueUrl: local.resources.queueUrl,
    logger: createLogger({ service: 'test-extract' }, () => undefined),
  });
  return {
    local,
    engine,
    handler,
    config,
    upload: (file, key) => uploadFile(local.clients.s3, local.resources.bucket, key, file, 'video/mp4'),
    event: (obj) => buildS3Event(obj),
    async stop() {
      await engine.close();
      await local.stop();
    },
  };
}
