/** The options by which status/answers/ask/requeue-dlq find the deployment they act on. */
import { Option, type Command } from 'commander';
import { createAwsClients, type AwsClients } from '../../lib/aws-clients';
import { applyEnv } from '../local/embedded-aws';
import { openHistory } from '../local/history';
import { resolveTarget, type ResolvedTarget, type TargetOptions } from '../local/targets';

export function addTargetOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--stack <name>', 'a deployed Longsight stack: names come from its CloudFormation outputs (e.g. Longsight-prod)').env('LONGSIGHT_STACK'))
    .addOption(new Option('--region <region>', 'AWS region of the stack (default: the SDK default chain)'))
    .addOption(new Option('--endpoint <url>', 'one S3/SQS/DynamoDB endpoint, e.g. LocalStack http://localhost:4566'))
    .addOption(new Option('--bucket <name>', 'video bucket').env('LONGSIGHT_VIDEO_BUCKET'))
    .addOption(new Option('--queue-url <url>', 'job queue URL').env('LONGSIGHT_QUEUE_URL'))
    .addOption(new Option('--dlq-url <url>', 'dead-letter queue URL').env('LONGSIGHT_DLQ_URL'))
    .addOption(new Option('--jobs-table <name>', 'jobs table').env('LONGSIGHT_JOBS_TABLE'))
    .addOption(new Option('--answers-table <name>', 'answers table').env('LONGSIGHT_ANSWERS_TABLE'));
}

export interface Connected extends ResolvedTarget {
  clients: AwsClients;
  close(): Promise<void>;
}

/**
 * Clients for where the command acts (targets.ts). `tablesOnly` commands (status, answers, jobs)
 * may read the local history of finished runs when nothing else is configured; its S3 and SQS
 * clients refuse every call (there are no objects or queues in the history).
 */
export async function connect(opts: TargetOptions, how: { tablesOnly?: boolean } = {}): Promise<Connected> {
  const target = await resolveTarget(opts, process.env, { allowHistory: how.tablesOnly });
  if (target.history) {
    const h = await openHistory();
    const refuse = () => Promise.reject(new Error(`${target.source} holds only jobs and answers: for the videos, frames and queues, keep a run going (\`longsight run --keep-running\`) or name a deployment (--stack)`));
    const clients = { s3: { send: refuse, destroy: () => undefined }, sqs: { send: refuse, destroy: () => undefined }, ddb: h.ddb } as unknown as AwsClients;
    return { ...target, resources: { ...target.resources, jobsTable: h.jobsTable, answersTable: h.answersTable }, clients, close: () => h.close() };
  }
  const restore = applyEnv(target.env);
  const clients = createAwsClients();
  return {
    ...target,
    clients,
    async close() {
      clients.s3.destroy();
      clients.sqs.destroy();
      clients.ddb.destroy();
      restore();
    },
  };
}
