/**
 * Test helper: the embedded S3/SQS/DynamoDB servers with Longsight's resources, the environment
 * pointed at them, and SDK clients built from that environment (exactly as the Lambda builds them).
 */
import { applyEnv, provisionLongsight, startEmbeddedAws, type EmbeddedAws, type LongsightResources } from '../../container/local/embedded-aws';
import { createAwsClients, type AwsClients } from '../../lib/aws-clients';

export interface LocalAws {
  aws: EmbeddedAws;
  clients: AwsClients;
  resources: LongsightResources;
  stop(): Promise<void>;
}

export async function startLocalAws(opts: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number; names?: Parameters<typeof provisionLongsight>[1] } = {}): Promise<LocalAws> {
  const aws = await startEmbeddedAws();
  const restore = applyEnv(aws.env);
  const clients = createAwsClients();
  const resources = await provisionLongsight(clients, opts.names, opts);
  return {
    aws,
    clients,
    resources,
    async stop() {
      clients.s3.destroy();
      clients.sqs.destroy();
      clients.ddb.destroy();
      restore();
      await aws.stop();
    },
  };
}
