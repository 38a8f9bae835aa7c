/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The `longsight` commands that act on a deployment (status, answers, ask, requeue-dlq), run
 * against the embedded servers with the real extraction handler and a real worker answering, the
 * deployment named by flags (as it would be by --stack or the LONGSIGHT_* variables).
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { main } from '../../container/cli/main';
import type { RunningWorker } from '../../container/worker/worker';
import { RECIPES, videoFile } from '../support/videos';
import { answersOf, drain, inProcessWorker, waitStatus } from '../worker/support/harness';
import { seedJob } from '../worker/support/jobs';
import { startRig, type Rig } from './support/stack';

jest.setTimeout(360_000);

let rig: Rig;
let worker: RunningWorker;
let jobId: string;
let flags: string[];

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'longsight', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  rig = await startRig();
  const r = rig.local.resources;
  flags = ['--bucket', r.bucket, '--queue-url', r.queueUrl, '--dlq-url', r.dlqUrl, '--jobs-table', r.jobsTable, '--answers-table', r.answersTable];
  worker = inProcessWorker(rig.local.clients, r, rig.engine);
  const obj = await rig.upload(await videoFile(RECIPES.h264Mov), 'talks/keynote.mov');
  const res = await rig.handler(rig.event(obj));
  jobId = (res.results[0] as { jobId: string }).jobId;
  await waitStatus(rig.local.clients, r, jobId, ['DONE']);
});
afterAll(async () => {
  await worker?.stop();
  await rig?.stop();
});

test('status: the job, its timings and settings; bad ids are usage errors, unknown ids not found', async () => {
  const s = await cli('status', jobId, ...flags);
  expect(s.code).toBe(0);
  expect(s.out).toMatch(new RegExp(`^${jobId}  DONE`));
  // End to end first, then what it is made of; the frames' span of the video; the worker's time as its cost.
  expect(s.out).toMatch(/time: +[\d.]+ (ms|s) end to end \(job created → answers\)/);
  expect(s.out).toMatch(/stages: +extract [\d.]+ s · queue [\d.]+ s · worker [\d.]+ s \(frames [\d.]+ s · vision [\d.]+ s · (prefill [\d.]+ s · decode [\d.]+ s|prefill \+ decode [\d.]+ s \(one run\))\)/);
  expect(s.out).toMatch(/frames: +3 frames over 0:00\.\d–0:0\d\.\d \(video 3\.00 s long\)/);
  expect(s.out).toMatch(/cost: +[\d.]+ (ms|s) of CPU on an instance of unknown type \(no price\)/);
  expect(s.out).toMatch(/settings: +3 frames · pooling K=4 s_h=2 s_l=8 · rope visual-yarn \(L_v 6272\)/);
  // Two questions share the video's prefix: its KV cache crossed out once and in twice; 12 bytes a generated token.
  expect(s.out).toMatch(/transfers: [\d.]+ MB across session runs \(pixels [\d.]+ MB, vision out [\d.]+ MB, embeddings [\d.]+ MB, KV in [\d.]+ MB \/ out [\d.]+ MB\) · 12 B per generated token/);
  const j = await cli('status', jobId, '--json', ...flags);
  const item = JSON.parse(j.out);
  expect(item).toMatchObject({ jobId, status: 'DONE', framesUsed: 3, transferBytes: { perGeneratedToken: 12 } });
  expect(item.transferBytes.byKind.kvIn).toBe(2 * item.transferBytes.byKind.kvOut);
  expect(item.transferBytes.byKind.pixels).toBe(3 * 3 * 384 * 384 * 4);
  expect((await cli('status', 'nope', ...flags)).code).toBe(2);
  const missing = await cli('status', 'j-0123456789abcdef0123456789abcdef', ...flags);
  expect(missing.code).toBe(3);
  expect(missing.err).toMatch(/no job j-0123456789abcdef0123456789abcdef/);
});

test('answers by job id and by video key; ask queues new questions on the same frames (no new extraction)', async () => {
  const a = await cli('answers', jobId, ...flags);
  expect(a.code).toBe(0);
  expect(a.out).toMatch(/^2 answers for job /);
  expect(a.out).toContain('Q: What is shown?');
  // The job's cost once, above its first answer.
  expect(a.out.match(/job cost: [\d.]+ (ms|s) of CPU on an instance of unknown type \(no price\)/g)).toHaveLength(1);

  const framesBefore = (await rig.local.clients.s3.send(new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: rig.local.resources.bucket, Prefix: 'frames/' }))).KeyCount;
  const ask = await cli('ask', jobId, 'Who is speaking?', '--wait', '--timeout', '60', ...flags);
  expect(ask.code).toBe(0);
  const askId = /queued job (j-[0-9a-f]{32})/.exec(ask.out)![1];
  expect(askId).not.toBe(jobId);
  expect(ask.out).toMatch(/Q: Who is speaking\?\n   A: /);
  const askItem = await waitStatus(rig.local.clients, rig.local.resources, askId, ['DONE']);
  expect(askItem.videoUri).toBe(`s3://${rig.local.resources.bucket}/talks/keynote.mov`);
  expect(askItem.frames!.manifestKey).toBe(`frames/${jobId}/manifest.json`);
  const framesAfter = (await rig.local.clients.s3.send(new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: rig.local.resources.bucket, Prefix: 'frames/' }))).KeyCount;
  expect(framesAfter).toBe(framesBefore);

  const again = await cli('ask', jobId, 'Who is speaking?', ...flags);
  expect(again.out).toBe(`already asked: job ${askId} is DONE (pass --again to run it again)`);

  const byVideo = await cli('answers', 'talks/keynote.mov', '--json', ...flags);
  expect(byVideo.code).toBe(0);
  const lines = byVideo.out.split('\n').map((l) => JSON.parse(l) as { jobId: string; question: string });
  expect(lines.map((l) => l.question).sort()).toEqual(['Is it day or night?', 'What is shown?', 'Who is speaking?']);
  expect(new Set(lines.map((l) => l.jobId))).toEqual(new Set([jobId, askId]));
  expect((await cli('answers', 'talks/nothing.mov', ...flags)).code).toBe(3);
});

test('jobs: newest first through the indexes, by status, by video, since a time; JSON lines; bad filters are usage errors', async () => {
  const all = await cli('jobs', ...flags);
  expect(all.code).toBe(0);
  expect(all.out.split('\n')[0]).toMatch(/^JOB +STATUS +UPDATED +VIDEO +PROGRESS \/ RESULT$/);
  expect(all.out).toMatch(new RegExp(`^${jobId}  DONE  .*s3://${rig.local.resources.bucket}/talks/keynote\\.mov  [\\d.]+ (ms|s) end to end · [\\d.]+ (ms|s) of CPU`, 'm'));
  expect(all.out).toMatch(/\d+ jobs?, newest first, from flags\/environment$/);

  const json = (await cli('jobs', '--json', ...flags)).out.split('\n').map((l) => JSON.parse(l) as { jobId: string; status: string; updatedAt: string });
  expect(json.map((j) => j.jobId)).toContain(jobId);
  expect([...json].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))).toEqual(json);

  const byVideo = (await cli('jobs', '--video', 'talks/keynote.mov', '--json', ...flags)).out.split('\n').map((l) => JSON.parse(l) as { jobId: string; videoUri: string });
  expect(byVideo.map((j) => j.jobId)).toContain(jobId);
  expect(new Set(byVideo.map((j) => j.videoUri))).toEqual(new Set([`s3://${rig.local.resources.bucket}/talks/keynote.mov`]));

  const done = (await cli('jobs', '--status', 'done', '--json', ...flags)).out.split('\n').map((l) => JSON.parse(l) as { status: string });
  expect(done.every((j) => j.status === 'DONE')).toBe(true);
  expect((await cli('jobs', '--status', 'RUNNING', ...flags)).out).toMatch(/^no jobs \(status RUNNING\) in flags\/environment$/);
  expect((await cli('jobs', '--since', '2099-01-01', '--json', ...flags)).out).toBe('');
  expect((await cli('jobs', '--since', '1h', '--limit', '1', '--json', ...flags)).out.split('\n')).toHaveLength(1);

  const bad = await cli('jobs', '--status', 'LOST', ...flags);
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/--status: expected one of QUEUED, RUNNING, DONE, FAILED; got "LOST"/);
});

test('ask: when the job message cannot be sent, the error says so and asking again queues it (not "already asked")', async () => {
  const r = rig.local.resources;
  const badQueue = flags.map((f) => (f === r.queueUrl ? `${r.queueUrl}-missing` : f));
  const failed = await cli('ask', jobId, 'What colour is the sky?', ...badQueue);
  expect(failed.code).toBe(1);
  expect(failed.err).toMatch(/could not queue job j-[0-9a-f]{32} on .*-missing: /);
  const again = await cli('ask', jobId, 'What colour is the sky?', '--wait', '--timeout', '60', ...flags);
  expect(again.code).toBe(0);
  expect(again.out).toMatch(/^queued job j-[0-9a-f]{32}/);
  expect(again.out).toMatch(/Q: What colour is the sky\?\n   A: /);
});

test('requeue-dlq: a FAILED job\'s message goes back and the job runs; a DONE job\'s stale copy is deleted; an invalid message stays', async () => {
  const r = rig.local.resources;
  const failed = await seedJob(rig.local.clients, r, {}, false);
  await rig.local.clients.ddb.send(
    new UpdateCommand({ TableName: r.jobsTable, Key: { jobId: failed.jobId }, UpdateExpression: 'SET #s = :f, reason = :r', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':f': 'FAILED', ':r': 'failed after 3 deliveries; last error: S3 was down' } }),
  );
  await rig.local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.dlqUrl, MessageBody: failed.body }));
  const original = await seedJob(rig.local.clients, r, {}, false);
  await rig.local.clients.ddb.send(new UpdateCommand({ TableName: r.jobsTable, Key: { jobId: original.jobId }, UpdateExpression: 'SET #s = :d', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':d': 'DONE' } }));
  await rig.local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.dlqUrl, MessageBody: original.body }));
  await rig.local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.dlqUrl, MessageBody: '{"not":"a job"}' }));

  const dry = await cli('requeue-dlq', '--dry-run', ...flags);
  expect(dry.code).toBe(0);
  expect(dry.out).toContain(`${failed.jobId}  FAILED: failed after 3 deliveries; last error: S3 was down`);
  expect(dry.out).toMatch(/3 message\(s\) in the DLQ \(dry run: nothing moved\)/);

  const moved = await cli('requeue-dlq', ...flags);
  expect(moved.out).toMatch(/1 requeued, 1 already DONE \(deleted\), 1 invalid \(left in the DLQ\)/);
  expect(moved.code).toBe(1); // something was left behind
  const item = await waitStatus(rig.local.clients, r, failed.jobId, ['DONE'], 180_000);
  expect(item.reason).toBeUndefined();
  expect(await answersOf(rig.local.clients, r, failed.jobId)).toHaveLength(2);
  expect(await drain(rig.local.clients, r.dlqUrl)).toEqual(['{"not":"a job"}']);
});

test('help and usage errors', async () => {
  const help = await cli('--help');
  expect(help.code).toBe(0);
  expect(help.out).toMatch(/Commands:[\s\S]*run \[options\] \[videos\.\.\.\][\s\S]*requeue-dlq/);
  expect(help.out).toMatch(/Exit codes: 0 ok · 1 failed .* 2 usage error · 3 not found/);
  // The legend of s and the pooling schedule, and the pull command's options.
  expect((await cli('run', '--help')).out).toMatch(/s = visual tokens ÷ the visual context window L_v .* pooling K=4 s_h=2 s_l=8: of every K frames the first keeps 14×14 tokens/);
  expect((await cli('model', 'pull', '--help')).out).toMatch(/Usage: longsight model pull \[options\] <repo>[\s\S]*--revision <rev>[\s\S]*--target <ep>/);
  const planHelp = await cli('plan', '--help');
  expect(planHelp.code).toBe(0);
  expect(planHelp.out).toMatch(/^usage: longsight plan --model/);
  expect(planHelp.out).toMatch(/--frames N +frames sampled from the video \(default 64\)/);
  const bad = await cli('run', '--frames', 'many');
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/--frames must be a whole number from 1 to 1024/);
  // (Not this file: `.ts` is an MPEG transport stream's suffix too.)
  const notVideo = await cli('run', require.resolve('../../package.json'));
  expect(notVideo.code).toBe(2);
  expect(notVideo.err).toMatch(/package\.json: not a video suffix Longsight extracts \(\.mp4, \.mov/);
  const missing = await cli('run', '/no/such/video.mp4');
  expect(missing.code).toBe(2);
  expect(missing.err).toMatch(/no such video file or folder: \/no\/such\/video\.mp4/);
  // Nothing named: reading commands look in the local history of finished runs; writing ones need a deployment.
  const noTarget = await cli('status', jobId);
  expect(noTarget.code).toBe(3);
  expect(noTarget.err).toMatch(new RegExp(`no job ${jobId} in longsight-jobs \\(the local history of finished runs \\(.*\\)\\): for a deployment pass --stack NAME`));
  const noQueue = await cli('ask', jobId, 'Why?');
  expect(noQueue.code).toBe(1);
  expect(noQueue.err).toMatch(/no Longsight deployment to talk to: pass --stack NAME/);
});
