/** `longsight status <jobId>`: one job's status, reason, attempts, timings and settings. */
import type { TargetOptions } from '../../local/targets';
import { getJob } from '../../local/job-queries';
import { modelLine, timingsLine, transferLine } from '../../local/job-report';
import { JOB_ID_PATTERN } from '../../../lib/contracts';
import { CliError, EXIT } from '../exit-codes';
import { connect } from '../target-options';

export async function statusCommand(jobId: string, opts: TargetOptions & { json?: boolean }, print: (s: string) => void): Promise<number> {
  if (!JOB_ID_PATTERN.test(jobId)) throw new CliError(`"${jobId}" is not a job id (j- and 32 hex digits; \`longsight run\` prints them)`, EXIT.usage);
  const t = await connect(opts);
  try {
    const job = await getJob(t.clients.ddb, t.resources.jobsTable, jobId);
    if (!job) throw new CliError(`no job ${jobId} in ${t.resources.jobsTable} (${t.source})`, EXIT.notFound);
    if (opts.json) {
      print(JSON.stringify(job));
      return EXIT.ok;
    }
    const lines = [
      `${job.jobId}  ${job.status}${job.reason ? `: ${job.reason}` : ''}`,
      `  video:     ${job.videoUri}`,
      `  created:   ${job.createdAt} · updated ${job.updatedAt} · attempts ${job.attempts}${job.workerId ? ` · worker ${job.workerId}` : ''}`,
      `  frames:    ${job.frames?.count ?? '–'}${job.frames?.durationSeconds ? ` over ${job.frames.durationSeconds.toFixed(1)} s` : ''}`,
      `  questions: ${job.questions.length}`,
      `  settings:  ${job.settings.frames} frames · pooling K=${job.settings.pooling.groupSize} s_h=${job.settings.pooling.strideHigh} s_l=${job.settings.pooling.strideLow} · rope ${job.settings.rope.mode} (L_v ${job.settings.rope.visualContextWindow}) · max ${job.settings.maxNewTokens} new tokens`,
    ];
    if (job.status === 'DONE') {
      lines.push(`  timings:   ${timingsLine(job)} · total ${((job.timings.totalMs ?? 0) / 1000).toFixed(2)} s`);
      lines.push(`  result:    ${modelLine(job)}`);
      const transfers = transferLine(job);
      if (transfers) lines.push(`  transfers: ${transfers}`);
      if (job.fallback) lines.push(`  fallback:  ${job.fallback}`);
    }
    print(lines.join('\n'));
    return EXIT.ok;
  } finally {
    t.close();
  }
}
