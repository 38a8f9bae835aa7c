/** How `longsight run`, `status`, `answers`, `ask` and `jobs` print a job and its answers. */
import type { AnswerItem, JobItem, JobProgress } from '../../lib/contracts';

const sec = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`);

/** A duration for people: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A position in a video: 0:07.5, 1:02:03.0. */
export function videoTime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = (seconds % 60).toFixed(1).padStart(4, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * What `s` and the pooling schedule mean, in one line (printed once per run and in `--help`).
 */
export const LEGEND =
  's = visual tokens ÷ the visual context window L_v (6272 by default): above 1, RoPE is stretched by s (visual-yarn); ' +
  'pooling K=4 s_h=2 s_l=8: of every K frames the first keeps 14×14 tokens (stride 2), the others 4×4 (stride 8); the stock model is K=1 s_h=2.';

/** The worker's part of a job: claim to answers written, and the stages inside it. */
export function workerStages(job: Pick<JobItem, 'timings'>): string {
  const t = job.timings ?? {};
  // A one-question job on the graph loop prefills and decodes in one run: one figure, said so.
  const answer = !t.prefillMs && t.decodeMs ? `prefill + decode ${sec(t.decodeMs)} (one run)` : `prefill ${sec(t.prefillMs)} · decode ${sec(t.decodeMs)}`;
  return `frames ${sec(t.frameLoadMs)} · vision ${sec(t.visionMs)} · ${answer}`;
}

/** extract → queue → worker (its stages): what the end-to-end time is made of. */
export function timingsLine(job: Pick<JobItem, 'timings'>): string {
  const t = job.timings ?? {};
  return `extract ${sec(t.extractMs)} · queue ${sec(t.queueWaitMs)} · worker ${sec(t.totalMs)} (${workerStages(job)})`;
}

/**
 * End-to-end time: from the upload (when the caller knows it: `longsight run`) or else from the
 * job's creation (its S3 event reached the extraction) to the answers written.
 */
export function endToEnd(job: Partial<JobItem>, uploadStartedAt?: number): { ms: number; from: string } | undefined {
  if (!job.updatedAt || (job.status !== 'DONE' && job.status !== 'FAILED')) return undefined;
  const end = Date.parse(job.updatedAt);
  if (uploadStartedAt !== undefined) return { ms: Math.max(0, end - uploadStartedAt), from: 'upload → answers' };
  if (!job.createdAt) return undefined;
  return { ms: Math.max(0, end - Date.parse(job.createdAt)), from: 'job created → answers' };
}

/** What crossed the runtime boundary: the total and the marginal bytes per generated token. */
export function transferLine(job: Partial<JobItem>): string | undefined {
  const t = job.transferBytes;
  if (!t) return undefined;
  const mb = (n: number) => `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 2)} MB`;
  const k = t.byKind;
  return `${mb(t.total)} across session runs (pixels ${mb(k.pixels)}, vision out ${mb(k.visionOut)}, embeddings ${mb(k.embeddings)}, KV in ${mb(k.kvIn)} / out ${mb(k.kvOut)}) · ${t.perGeneratedToken} B per generated token`;
}

/** The frames the model saw: how many, and the stretch of the video they span. */
export function framesText(job: Partial<JobItem>): string {
  const n = job.framesUsed ?? job.frames?.count;
  const span = job.frameSpan ? ` over ${videoTime(job.frameSpan.firstSeconds)}–${videoTime(job.frameSpan.lastSeconds)}` : '';
  const of = job.frames?.durationSeconds ? ` (video ${duration(job.frames.durationSeconds * 1000)} long)` : '';
  return `${n ?? '?'} frames${span}${of}`;
}

/** What the model saw and did: frames, visual tokens, s, pooling, tokens generated, model (frames left out with `frames: false`). */
export function modelLine(job: Partial<JobItem>, opts: { frames?: boolean } = {}): string {
  const p = job.poolingUsed;
  const parts = [
    opts.frames === false ? undefined : framesText(job),
    `${job.tokens?.visual ?? '?'} visual tokens`,
    `s = ${job.ropeScale !== undefined ? job.ropeScale.toFixed(2) : '?'} (${job.ropeMode ?? '?'})`,
    p ? `pooling K=${p.groupSize} s_h=${p.strideHigh} s_l=${p.strideLow}` : undefined,
    job.tokens ? `${job.tokens.generated} tokens generated` : undefined,
    job.modelId ? `model ${job.modelId}` : undefined,
  ];
  return parts.filter(Boolean).join(' · ');
}

/** USD with enough digits to see a fraction of a cent. */
export function usd(n: number): string {
  return n >= 1 ? `$${n.toFixed(2)}` : n >= 0.01 ? `$${n.toFixed(3)}` : `$${n.toPrecision(2)}`;
}

/** The job's cost as recorded by its worker: measured seconds × the hourly price of its GPU. */
export function costLine(job: Partial<JobItem>): string | undefined {
  const c = job.cost;
  if (!c) return undefined;
  const what = c.device === 'gpu' ? 'GPU' : 'CPU';
  const where = c.instanceType === 'local' ? 'this machine' : c.instanceType ? `a ${c.instanceType}` : 'an instance of unknown type';
  if (c.usd === undefined) return `${duration(c.seconds * 1000)} of ${what} on ${where} (no price${c.instanceType === 'local' ? ': local runs are not priced' : ''})`;
  return `${usd(c.usd)} = ${duration(c.seconds * 1000)} of ${where}'s ${what} at $${String(+(c.usdPerHour ?? 0).toFixed(4))}/h`;
}

/** The stage in words: loading frames 8/16 · vision 12/16 frames · video prefilled, answering · answered 1/2 questions. */
function stageLabel(p: JobProgress): string {
  switch (p.stage) {
    case 'frames':
      return `loading frames ${p.done}/${p.total}`;
    case 'vision':
      return `vision ${p.done}/${p.total} frames`;
    case 'prefill':
      // Reported when the video's prefix is in the cache: the answers are being generated next.
      return p.done >= p.total ? 'video prefilled, answering' : 'prefilling';
    case 'decode':
      return `answered ${p.done}/${p.total} questions`;
  }
}

/**
 * A running job's stage, share done and ETA as of `now` (the worker's estimate counts down from
 * when it was written; past it, the stage is taking longer than estimated).
 */
export function progressText(p: JobProgress, now = Date.now()): string {
  const stage = stageLabel(p);
  const pct = `${Math.floor(p.fraction * 100)}%`;
  let eta = '';
  if (p.etaSeconds !== undefined) {
    const left = p.etaSeconds * 1000 - Math.max(0, now - Date.parse(p.at));
    eta = left > 0 ? ` · ETA ${left < 60_000 ? `${Math.max(1, Math.round(left / 1000))} s` : duration(left)}` : ' · ETA any moment';
  }
  return `${stage} · ${pct}${eta}`;
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l, i) => (i === 0 ? l : ' '.repeat(prefix.length) + l))
    .join('\n');
}

/** The block printed when a job finishes: the end-to-end time first, then its parts, the model's view, the cost, the answers. */
export function formatJob(job: Partial<JobItem>, answers: AnswerItem[], label?: string, opts: { uploadStartedAt?: number } = {}): string {
  const name = label ?? job.video?.key ?? '';
  if (job.status === 'FAILED') return `✘ ${job.jobId}  ${name}  FAILED: ${job.reason ?? 'no reason recorded'}`;
  const e2e = endToEnd(job, opts.uploadStartedAt);
  const lines = [`✔ ${job.jobId}  ${name}  ${job.status}${e2e ? ` in ${duration(e2e.ms)} (${e2e.from})` : ''}`];
  if (job.status === 'DONE') {
    lines.push(`   timings: ${timingsLine(job as JobItem)}`);
    lines.push(`   ${modelLine(job)}`);
    const cost = costLine(job);
    if (cost) lines.push(`   cost: ${cost}`);
    if (job.fallback) lines.push(`   fallback: ${job.fallback}`);
  }
  const order = new Map((job.questions ?? []).map((q, i) => [q.id, i]));
  for (const a of [...answers].sort((x, y) => (order.get(x.questionId) ?? 99) - (order.get(y.questionId) ?? 99))) {
    lines.push(`   Q: ${a.question}`);
    lines.push(`   A: ${indent(a.answer.trim() || '(empty answer)', '   A: ')}`);
  }
  return lines.join('\n');
}

/** The JSON object printed per finished job with --json. */
export function jobJson(job: Partial<JobItem>, answers: AnswerItem[], extra: Record<string, unknown> = {}, opts: { uploadStartedAt?: number } = {}): string {
  const e2e = endToEnd(job, opts.uploadStartedAt);
  return JSON.stringify({
    ...extra,
    jobId: job.jobId,
    status: job.status,
    reason: job.reason,
    video: job.videoUri,
    attempts: job.attempts,
    endToEndMs: e2e?.ms,
    timings: job.timings,
    tokens: job.tokens,
    ropeScale: job.ropeScale,
    ropeMode: job.ropeMode,
    pooling: job.poolingUsed,
    framesUsed: job.framesUsed,
    frameSpan: job.frameSpan,
    fallback: job.fallback,
    modelId: job.modelId,
    cost: job.cost,
    transferBytes: job.transferBytes,
    answers: answers.map((a) => ({ questionId: a.questionId, question: a.question, answer: a.answer, tokens: a.tokens, latencyMs: a.latencyMs })),
  });
}
