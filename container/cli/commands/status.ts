/** `longsight status <jobId>`: one job's status, reason, attempts, times, frames, settings, progress and cost. */
import type { TargetOptions } from '../../local/targets';
import { getJob } from '../../local/job-queries';
import { costLine, duration, endToEnd, framesText, modelLine, progressText, timingsLine, transferLine } from '../../local/job-report';
import { JOB_ID_PATTERN } from '../../../lib/contracts';
import { CliError, EXIT } from '../exit-codes';
import { connect } from '../target-options';

export async function statusCommand(jobId: string, opts: TargetOptions & { json?: boolean }, print: (s: string) => void): Promise<number> {
  if (!JOB_ID_PATTERN.test(jobId)) throw new CliError(`"${jobId}" is not a job id (j- and 32 hex digits; \`longsight run\` prints them)`, EXIT.usage);
  const t = await connect(opts, { tablesOnly: true });
  try {
    const job = await getJob(t.clients.ddb, t.resources.jobsTable, jobId);
    if (!job) throw new CliError(`no job ${jobId} in ${t.resources.jobsTable} (${t.source})${t.history ? ': for a deployment pass --stack NAME' : ''}`, EXIT.notFound);
    if (opts.json) {
      print(JSON.stringify(job));
      return EXIT.ok;
    }
    const lines = [
      `${job.jobId}  ${job.status}${job.reason ? `: ${job.reason}` : ''}`,
      `  video:     ${job.videoUri}`,
      `  created:   ${job.createdAt} · updated ${job.updatedAt} · attempts ${job.attempts}${job.workerId ? ` · worker ${job.workerId}` : ''}`,
      `  frames:    ${job.frames || job.framesUsed ? framesText(job) : '–'}`,
      `  questions: ${job.questions.length}`,
      `  settings:  ${job.settings.frames} frames · pooling K=${job.settings.pooling.groupSize} s_h=${job.settings.pooling.strideHigh} s_l=${job.settings.pooling.strideLow} · rope ${job.settings.rope.mode} (L_v ${job.settings.rope.visualContextWindow}) · max ${job.settings.maxNewTokens} new tokens`,
    ];
    if (job.status === 'RUNNING') lines.push(`  progress:  ${job.progress ? progressText(job.progress) : 'starting (no stage reported yet)'}`);
    if (job.status === 'DONE') {
      const e2e = endToEnd(job);
      lines.push(`  time:      ${e2e ? `${duration(e2e.ms)} end to end (${e2e.from})` : '–'}`);
      lines.push(`  stages:    ${timingsLine(job)}`);
      lines.push(`  result:    ${modelLine(job, { frames: false })}`);
      const cost = costLine(job);
      if (cost) lines.push(`  cost:      ${cost}`);
      const transfers = transferLine(job);
      if (transfers) lines.push(`  transfers: ${transfers}`);
      if (job.fallback) lines.push(`  fallback:  ${job.fallback}`);
    }
    print(lines.join('\n'));
    return EXIT.ok;
  } finally {
    await t.close();
  }
}
