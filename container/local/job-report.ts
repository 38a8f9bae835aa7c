/** How `longsight run`, `status` and `answers` print a job and its answers. */
import type { AnswerItem, JobItem } from '../../lib/contracts';

const sec = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`);

export function timingsLine(job: Pick<JobItem, 'timings'>): string {
  const t = job.timings ?? {};
  return [
    `extract ${sec(t.extractMs)}`,
    `queue ${sec(t.queueWaitMs)}`,
    `frames ${sec(t.frameLoadMs)}`,
    `vision ${sec(t.visionMs)}`,
    `prefill ${sec(t.prefillMs)}`,
    `decode ${sec(t.decodeMs)}`,
  ].join(' · ');
}

/** What crossed the runtime boundary: the total and the marginal bytes per generated token. */
export function transferLine(job: Partial<JobItem>): string | undefined {
  const t = job.transferBytes;
  if (!t) return undefined;
  const mb = (n: number) => `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 2)} MB`;
  const k = t.byKind;
  return `${mb(t.total)} across session runs (pixels ${mb(k.pixels)}, vision out ${mb(k.visionOut)}, embeddings ${mb(k.embeddings)}, KV in ${mb(k.kvIn)} / out ${mb(k.kvOut)}) · ${t.perGeneratedToken} B per generated token`;
}

export function modelLine(job: Partial<JobItem>): string {
  const p = job.poolingUsed;
  const parts = [
    `${job.framesUsed ?? job.frames?.count ?? '?'} frames`,
    `${job.tokens?.visual ?? '?'} visual tokens`,
    `s = ${job.ropeScale !== undefined ? job.ropeScale.toFixed(2) : '?'} (${job.ropeMode ?? '?'})`,
    p ? `pooling K=${p.groupSize} s_h=${p.strideHigh} s_l=${p.strideLow}` : undefined,
    job.tokens ? `${job.tokens.generated} tokens generated` : undefined,
    job.modelId ? `model ${job.modelId}` : undefined,
  ];
  return parts.filter(Boolean).join(' · ');
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l, i) => (i === 0 ? l : ' '.repeat(prefix.length) + l))
    .join('\n');
}

/** The block printed when a job finishes. */
export function formatJob(job: Partial<JobItem>, answers: AnswerItem[], label?: string): string {
  const name = label ?? job.video?.key ?? '';
  if (job.status === 'FAILED') return `✘ ${job.jobId}  ${name}  FAILED: ${job.reason ?? 'no reason recorded'}`;
  const lines = [`✔ ${job.jobId}  ${name}  ${job.status}${job.timings?.totalMs !== undefined ? ` in ${sec(job.timings.totalMs)} on the worker` : ''}`];
  if (job.status === 'DONE') {
    lines.push(`   timings: ${timingsLine(job as JobItem)}`);
    lines.push(`   ${modelLine(job)}`);
    if (job.fallback) lines.push(`   fallback: ${job.fallback}`);
  }
  const order = new Map((job.questions ?? []).map((q, i) => [q.id, i]));
  for (const a of [...answers].sort((x, y) => (order.get(x.questionId) ?? 99) - (order.get(y.questionId) ?? 99))) {
    lines.push(`   Q: ${a.question}`);
    lines.push(`   A: ${indent(a.answer.trim() || '(empty answer)', '   A: ')}`);
  }
  return lines.join('\n');
}

/** The JSON line printed per finished job with --json. */
export function jobJson(job: Partial<JobItem>, answers: AnswerItem[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    ...extra,
    jobId: job.jobId,
    status: job.status,
    reason: job.reason,
    video: job.videoUri,
    attempts: job.attempts,
    timings: job.timings,
    tokens: job.tokens,
    ropeScale: job.ropeScale,
    ropeMode: job.ropeMode,
    pooling: job.poolingUsed,
    framesUsed: job.framesUsed,
    fallback: job.fallback,
    modelId: job.modelId,
    transferBytes: job.transferBytes,
    answers: answers.map((a) => ({ questionId: a.questionId, question: a.question, answer: a.answer, tokens: a.tokens, latencyMs: a.latencyMs })),
  });
}
