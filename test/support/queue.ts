/** Test helper: take every message currently on a queue (receive + delete), for assertions. */
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

export async function drainQueue(sqs: SQSClient, queueUrl: string, waitSeconds = 0): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: bodies.length ? 0 : waitSeconds, VisibilityTimeout: 30 }));
    const msgs = r.Messages ?? [];
    if (!msgs.length) return bodies;
    for (const m of msgs) {
      bodies.push(m.Body ?? '');
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
    }
  }
}
