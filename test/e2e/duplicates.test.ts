/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * At-least-once delivery end to end: S3 delivers the same ObjectCreated event twice (in turn and
 * concurrently), SQS delivers the job message twice, two workers race: one job, one message's
 * worth of work, one set of answers.
 */
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { RECIPES, videoFile } from '../support/videos';
import { answersOf, inProcessWorker, queueDepth, waitFor, waitStatus } from '../worker/support/harness';
import { startRig, type Rig } from './support/stack';

jest.setTimeout(360_000);

let rig: Rig;
beforeAll(async () => {
  rig = await startRig();
});
afterAll(async () => rig?.stop());

test('a duplicated S3 event and a duplicated SQS delivery give one job and one set of answers', async () => {
  const { local } = rig;
  const r = local.resources;
  const obj = await rig.upload(await videoFile(RECIPES.h264Mp4), 'uploads/dup test ü.mp4');
  const event = rig.event(obj);
  // S3 redelivers: once in turn, then twice at the same moment.
  const first = await rig.handler(structuredClone(event));
  const again = await rig.handler(structuredClone(event));
  const racing = await Promise.allSettled([rig.handler(structuredClone(event)), rig.handler(structuredClone(event))]);
  expect(first.results[0].outcome).toBe('queued');
  const jobId = (first.results[0] as { jobId: string }).jobId;
  expect(again.results[0]).toMatchObject({ outcome: 'duplicate', jobId });
  for (const s of racing) expect(s.status === 'fulfilled' ? s.value.results[0].outcome : 'threw').toMatch(/duplicate|in-progress/);
  expect(await queueDepth(local.clients, r.queueUrl)).toEqual({ visible: 1, inFlight: 0 });

  // SQS redelivers too: a second copy of the message on the queue.
  const got = await local.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: r.queueUrl, VisibilityTimeout: 0 }));
  await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: got.Messages![0].Body! }));
  const depth = await queueDepth(local.clients, r.queueUrl);
  expect(depth.visible + depth.inFlight).toBe(2);

  const a = inProcessWorker(local.clients, r, rig.engine, {}, 'wa');
  const b = inProcessWorker(local.clients, r, rig.engine, {}, 'wb');
  try {
    const item = await waitStatus(local.clients, r, jobId, ['DONE', 'FAILED'], 180_000);
    expect(item.status).toBe('DONE');
    await waitFor('both copies consumed', async () => {
      const d = await queueDepth(local.clients, r.queueUrl);
      return d.visible + d.inFlight === 0;
    });
    const answers = await answersOf(local.clients, r, jobId);
    expect(answers.map((x) => x.question).sort()).toEqual(['Is it day or night?', 'What is shown?']);
    expect(new Set(answers.map((x) => x.runToken))).toEqual(new Set([item.runToken]));
    expect(a.stats.done + b.stats.done).toBe(1);
    expect(a.stats.duplicates + b.stats.duplicates).toBe(1);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
