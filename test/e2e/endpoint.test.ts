/**
 * `longsight run --endpoint URL`: the same pipeline against an S3/SQS/DynamoDB endpoint that is
 * already running (LocalStack's single endpoint), provisioning the resources there, instead of
 * starting the embedded servers. The "external" endpoint here is the embedded servers behind one
 * routing port, as LocalStack presents them.
 */
import { startEmbeddedAws, type EmbeddedAws } from '../../container/local/embedded-aws';
import { runPipeline } from '../../container/local/pipeline';
import { RECIPES, videoFile } from '../support/videos';
import { captureStream } from './support/capture';
import { startOneEndpoint } from './support/one-endpoint';

jest.setTimeout(540_000);

let aws: EmbeddedAws;
let endpoint: { url: string; close(): Promise<void> };
const saved = { ...process.env };

beforeAll(async () => {
  aws = await startEmbeddedAws();
  endpoint = await startOneEndpoint(aws.endpoints.s3, aws.endpoints.dynamodb);
  // Credentials and region as a LocalStack user would have them; no endpoint variables.
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
});
afterAll(async () => {
  process.env = saved;
  await endpoint?.close();
  await aws?.stop();
});

test('run --endpoint: provisions bucket, queue and tables on the endpoint and answers there', async () => {
  const out = captureStream();
  const err = captureStream();
  const r = await runPipeline({ videos: [await videoFile(RECIPES.h264Mp4)], endpoint: endpoint.url, workers: 1, frames: 2, maxNewTokens: 2, questions: ['What is shown?'], out, err, timeoutSeconds: 150 });
  expect(err.text()).toContain(`Target: endpoint ${endpoint.url}`);
  expect(err.text()).not.toContain('Local AWS:');
  expect(r.exitCode).toBe(0);
  expect(r.jobs).toEqual([expect.objectContaining({ status: 'DONE', answers: 1 })]);
  expect(out.text()).toContain('Q: What is shown?');
});
