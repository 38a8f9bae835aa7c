/** The job queue between the extraction Lambda and the GPU workers, with its dead-letter queue. */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface JobQueueProps {
  removalPolicy: RemovalPolicy;
  /** The worker's heartbeat extends a running job's visibility well before this lapses. */
  visibilityTimeoutSeconds: number;
  /** Deliveries before a message moves to the DLQ (a poison message costs at most this many runs). */
  maxReceiveCount: number;
}

/** Long polling at the maximum: an idle worker makes 3 requests a minute instead of hundreds. */
export const RECEIVE_WAIT_SECONDS = 20;

export class JobQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: JobQueueProps) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Long enough to find, fix and requeue (`longsight requeue-dlq`); 14 days is the SQS maximum.
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'Jobs', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.visibilityTimeoutSeconds),
      receiveMessageWaitTime: Duration.seconds(RECEIVE_WAIT_SECONDS),
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
      removalPolicy: props.removalPolicy,
    });
  }
}
