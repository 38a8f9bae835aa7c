/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * `npm start -- "🎬 <name>.mp4" clip.ts` as a user runs it: an emoji file name with a sidecar of
 * questions in several scripts, and an MPEG-TS file, through the real handler, queue and worker;
 * both DONE, the questions read back from the answers table exactly as written.
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { runPipeline } from '../../container/local/pipeline';
import type { AnswerItem } from '../../lib/contracts';
import { RECIPES, videoFile } from '../support/videos';
import { captureStream } from './support/capture';

jest.setTimeout(600_000);

test('an emoji file name with Unicode questions and an MPEG-TS file both end DONE; the questions round-trip to the answers table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'longsight-names-'));
  const emoji = join(dir, '🎬 clip ü.mp4');
  copyFileSync(await videoFile(RECIPES.h264Mp4), emoji);
  const questions = ['What happens in 🎬 scene 𝟙?', 'מה קורה בסרטון?', 'Que\u0301 pasa?'];
  writeFileSync(join(dir, '🎬 clip ü.questions.json'), JSON.stringify({ questions }));
  const ts = await videoFile({ kind: 'ffmpeg', ext: '.ts', args: ['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10:duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p', '-f', 'mpegts'] });
  const clip = join(dir, 'clip.ts');
  copyFileSync(ts, clip);
  let answers: AnswerItem[] = [];
  const r = await runPipeline({
    videos: [emoji, clip],
    workers: 1,
    frames: 2,
    maxNewTokens: 2,
    questions: ['What is shown?'],
    out: captureStream(),
    err: captureStream(),
    timeoutSeconds: 480,
    inspect: async (ctx) => {
      answers = ((await ctx.clients.ddb.send(new ScanCommand({ TableName: ctx.resources.answersTable, ConsistentRead: true }))).Items ?? []) as AnswerItem[];
    },
  });
  expect(r.jobs.map((j) => [j.key, j.status, j.reason])).toEqual([
    ['🎬 clip ü.mp4', 'DONE', undefined],
    ['clip.ts', 'DONE', undefined],
  ]);
  expect(r.exitCode).toBe(0);
  const emojiJob = r.jobs[0].jobId;
  expect(answers.filter((a) => a.jobId === emojiJob).map((a) => a.question).sort()).toEqual(['What is shown?', ...questions].sort());
  expect(answers.find((a) => a.jobId === emojiJob)!.videoUri).toMatch(/\/🎬 clip ü\.mp4$/);
});
