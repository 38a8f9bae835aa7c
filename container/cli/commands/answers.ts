/**
 * `longsight answers <jobId | key | s3://bucket/key>`: a job's answers, or every answer about one
 * video (all its jobs, `ask` jobs included) through the answers table's byVideo index, with what
 * each job cost.
 */
import type { AnswerItem } from '../../../lib/contracts';
import { JOB_ID_PATTERN } from '../../../lib/contracts';
import type { TargetOptions } from '../../local/targets';
import { answersOfJob, answersOfVideo, getJob, getJobs } from '../../local/job-queries';
import { costLine } from '../../local/job-report';
import { CliError, EXIT } from '../exit-codes';
import { connect } from '../target-options';

export async function answersCommand(ref: string, opts: TargetOptions & { json?: boolean }, print: (s: string) => void): Promise<number> {
  const t = await connect(opts, { tablesOnly: true });
  try {
    let answers: AnswerItem[];
    let what: string;
    if (JOB_ID_PATTERN.test(ref)) {
      answers = await answersOfJob(t.clients.ddb, t.resources.answersTable, ref);
      what = `job ${ref}`;
      if (answers.length === 0) {
        const job = await getJob(t.clients.ddb, t.resources.jobsTable, ref);
        if (!job) throw new CliError(`no job ${ref} (${t.source})`, EXIT.notFound);
        throw new CliError(`job ${ref} has no answers yet: it is ${job.status}${job.reason ? ` (${job.reason})` : ''}`, EXIT.notFound);
      }
    } else {
      const uri = ref.startsWith('s3://') ? ref : `s3://${t.resources.bucket}/${ref.replace(/^\/+/, '')}`;
      answers = await answersOfVideo(t.clients.ddb, t.resources.answersTable, uri);
      what = uri;
      if (answers.length === 0) throw new CliError(`no answers about ${uri} (is the key right? answers need the video to be extracted and answered first)`, EXIT.notFound);
    }
    answers.sort((a, b) => a.answeredAt.localeCompare(b.answeredAt) || a.questionId.localeCompare(b.questionId));
    const jobs = await getJobs(t.clients.ddb, t.resources.jobsTable, [...new Set(answers.map((a) => a.jobId))]);
    if (opts.json) {
      for (const a of answers) print(JSON.stringify({ jobId: a.jobId, questionId: a.questionId, question: a.question, answer: a.answer, tokens: a.tokens, latencyMs: a.latencyMs, answeredAt: a.answeredAt, modelId: a.modelId, jobCost: jobs.get(a.jobId)?.cost }));
      return EXIT.ok;
    }
    print(`${answers.length} answer${answers.length === 1 ? '' : 's'} for ${what}:`);
    let lastJob = '';
    for (const a of answers) {
      // Each job's cost once, above its first answer (a job's questions share its run).
      const cost = a.jobId !== lastJob ? costLine(jobs.get(a.jobId) ?? {}) : undefined;
      lastJob = a.jobId;
      print(`\n[${a.jobId} · ${a.answeredAt} · ${a.modelId} · ${a.tokens.generated} tokens]${cost ? `\njob cost: ${cost}` : ''}\nQ: ${a.question}\nA: ${a.answer.trim() || '(empty answer)'}`);
    }
    return EXIT.ok;
  } finally {
    await t.close();
  }
}
