/**
 * `longsight requeue-dlq`: after a fix, moves the dead-letter queue's messages back to the job
 * queue. Each job is set QUEUED again first (a FAILED job would otherwise be dropped by the worker
 * as finished); a job that is DONE meanwhile has its stale message deleted instead; a message that
 * is not a valid job message stays in the DLQ.
 */
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { parseJobMessage } from '../../../lib/contracts';
import type { TargetOptions } from '../../local/targets';
import { getJob } from '../../local/job-queries';
import { EXIT } from '../exit-codes';
import { connect } from '../target-options';

export interface RequeueOptions extends TargetOptions {
  max?: number;
  dryRun?: boolean;
  json?: boolean;
}

export async function requeueDlqCommand(o: RequeueOptions, print: (s: string) => void): Promise<number> {
  const t = await connect(o);
  const counts = { requeued: 0, alreadyDone: 0, invalidLeft: 0, seen: 0 };
  const held: Message[] = [];
  try {
    const max = o.max ?? Infinity;
    while (counts.seen < max) {
      const r = await t.clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: t.resources.dlqUrl, MaxNumberOfMessages: Math.min(10, max - counts.seen), WaitTimeSeconds: 1, VisibilityTimeout: 60 }),
      );
      const messages = r.Messages ?? [];
      if (messages.length === 0) break;
      for (const m of messages) {
        counts.seen++;
        let jobId: string | undefined;
        try {
          jobId = parseJobMessage(m.Body ?? '').jobId;
        } catch (e) {
          counts.invalidLeft++;
          held.push(m);
          print(`left in the DLQ: message ${m.MessageId} is not a valid job message (${(e as Error).message})`);
          continue;
        }
        const job = await getJob(t.clients.ddb, t.resources.jobsTable, jobId);
        if (o.dryRun) {
          held.push(m);
          print(o.json ? JSON.stringify({ jobId, status: job?.status, reason: job?.reason }) : `${jobId}  ${job?.status ?? 'no job item'}${job?.reason ? `: ${job.reason}` : ''}`);
          continue;
        }
        if (job?.status === 'DONE') {
          await t.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: t.resources.dlqUrl, ReceiptHandle: m.ReceiptHandle! }));
          counts.alreadyDone++;
          continue;
        }
        if (job) {
          try {
            await t.clients.ddb.send(
              new UpdateCommand({
                TableName: t.resources.jobsTable,
                Key: { jobId },
                UpdateExpression: 'SET #s = :queued, updatedAt = :now, reason = :reason',
                ConditionExpression: '#s <> :done',
                ExpressionAttributeNames: { '#s': 'status' },
                ExpressionAttributeValues: { ':queued': 'QUEUED', ':done': 'DONE', ':now': new Date().toISOString(), ':reason': `requeued from the DLQ; previously: ${job.reason ?? job.status}`.slice(0, 2000) },
              }),
            );
          } catch (e) {
            if ((e as { name?: string }).name !== 'ConditionalCheckFailedException') throw e;
            await t.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: t.resources.dlqUrl, ReceiptHandle: m.ReceiptHandle! }));
            counts.alreadyDone++;
            continue;
          }
        }
        // Send first, then delete: a crash in between leaves a duplicate, which the worker drops; never a loss.
        await t.clients.sqs.send(new SendMessageCommand({ QueueUrl: t.resources.queueUrl, MessageBody: m.Body! }));
        await t.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: t.resources.dlqUrl, ReceiptHandle: m.ReceiptHandle! }));
        counts.requeued++;
        if (!o.json) print(`requeued ${jobId}`);
      }
    }
  } finally {
    // Messages looked at but kept go back to the DLQ at once.
    await Promise.all(held.map((m) => t.clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: t.resources.dlqUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })).catch(() => undefined)));
    await t.close();
  }
  print(
    o.json
      ? JSON.stringify(counts)
      : o.dryRun
        ? `${counts.seen} message(s) in the DLQ (dry run: nothing moved)`
        : `${counts.requeued} requeued, ${counts.alreadyDone} already DONE (deleted), ${counts.invalidLeft} invalid (left in the DLQ)`,
  );
  if (counts.invalidLeft > 0 && !o.dryRun) return EXIT.failed;
  return EXIT.ok;
}
