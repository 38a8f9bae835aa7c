/**
 * The stack of every environment in cdk.json, synthesized once each (bundling, asset staging and
 * cdk-nag included, as `cdk synth -c env=NAME` does) and checked property by property against the
 * environment's validated configuration.
 */
import { estimateCosts, MEASURED_COSTS } from '../../lambda/extract-frames/extraction-strategy';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  ANSWERS_TABLE_KEYS,
  ARCHIVE_OUTPUTS,
  backfillConcurrency,
  ENV,
  EXPORT_DATA_COLUMNS,
  EXPORT_PARTITION_COLUMNS,
  extractionProfile,
  EnvironmentConfig,
  ExtractRuntimeConfigSchema,
  GPU_INSTANCE_TYPES,
  JOBS_TABLE_KEYS,
  METRICS_NAMESPACE,
  WORKER_METRICS,
  WorkerConfigSchema,
  resolveEnvironment,
  suffixCaseVariants,
} from '../../lib/contracts';
import { extractRuntimeConfig } from '../../lib/stack/extraction-function';
import { taskSize, WORKER_HEALTH_CHECK_COMMAND, WORKER_STOP_TIMEOUT_SECONDS } from '../../lib/stack/gpu-worker-service';
import { parseS3Uri } from '../../lib/stack/model-artifact-access';
import { ffmpegBuildArgs, IMAGE_FFMPEG_PATH, IMAGE_FFPROBE_PATH } from '../../lib/stack/extraction-image';
import { IS_VIDEO_CONDITION } from '../../lib/stack/backfill-state-machine';
import { readCdkJson, removeOutdir, resourcesOfType, synthEnvironment, Synthesized, logicalIdOf } from './synth';

jest.setTimeout(600_000);

const environments = readCdkJson().context.environments;
const ENV_NAMES = Object.keys(environments);
const synthesized = new Map<string, Synthesized>();

beforeAll(() => {
  for (const name of ENV_NAMES) synthesized.set(name, synthEnvironment(name));
}, 240_000);

afterAll(() => {
  for (const s of synthesized.values()) removeOutdir(s);
});

/** Every statement of every IAM policy in the template, with the policy's roles. */
function policyStatements(s: Synthesized): { roles: string[]; statement: any }[] {
  return resourcesOfType(s, 'AWS::IAM::Policy').flatMap(([, r]) =>
    (r.Properties.PolicyDocument.Statement as any[]).map((statement) => ({
      roles: (r.Properties.Roles ?? []).map((x: any) => x.Ref),
      statement,
    })),
  );
}
const actionsOf = (statement: any): string[] => [statement.Action].flat();

describe.each(ENV_NAMES)('environment %s', (envName) => {
  let s: Synthesized;
  let config: EnvironmentConfig;
  const deletion = () => (config.retention.removalPolicy === 'retain' ? 'Retain' : 'Delete');
  const id = (construct: { node: { defaultChild?: unknown } }) => logicalIdOf(s.stack, construct);

  beforeAll(() => {
    s = synthesized.get(envName)!;
    config = resolveEnvironment(environments, envName);
  });

  it('is named Longsight-<env> and tagged', () => {
    expect(s.stack.stackName).toBe(`Longsight-${envName}`);
    s.template.hasResourceProperties('AWS::SQS::Queue', {
      Tags: Match.arrayWith([{ Key: 'environment', Value: envName }, { Key: 'project', Value: 'longsight' }]),
    });
  });

  describe('video bucket', () => {
    it('is encrypted, private, TLS-only, versioned, logged, and expires frames/', () => {
      const bucket = s.json.Resources[id(s.stack.videoBucket.bucket)];
      expect(bucket.Properties).toMatchObject({
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        VersioningConfiguration: { Status: 'Enabled' },
        LoggingConfiguration: { DestinationBucketName: { Ref: expect.stringMatching(/^AccessLogs/) } },
      });
      expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual(
        expect.arrayContaining([expect.objectContaining({ Prefix: 'frames/', ExpirationInDays: config.retention.frameExpiryDays, Status: 'Enabled' })]),
      );
      expect((bucket as any).DeletionPolicy).toBe(deletion());
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id(s.stack.videoBucket.bucket) },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    });

    it('the access-log bucket is private, encrypted and TLS-only too', () => {
      const logs = resourcesOfType(s, 'AWS::S3::Bucket').filter(([k]) => k.startsWith('AccessLogs'));
      expect(logs).toHaveLength(1);
      expect(logs[0][1].Properties).toMatchObject({
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      });
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: logs[0][0] },
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    });

    it('sends ObjectCreated for every video suffix case variant, and nothing else, to the extraction Lambda', () => {
      const [[, notifications]] = resourcesOfType(s, 'Custom::S3BucketNotifications');
      expect(notifications.Properties.BucketName).toEqual({ Ref: id(s.stack.videoBucket.bucket) });
      const configs = notifications.Properties.NotificationConfiguration.LambdaFunctionConfigurations as any[];
      const fnArn = { 'Fn::GetAtt': [id(s.stack.extraction.fn), 'Arn'] };
      for (const c of configs) {
        expect(c.Events).toEqual(['s3:ObjectCreated:*']);
        expect(c.LambdaFunctionArn).toEqual(fnArn);
      }
      const suffixes = configs.map((c) => {
        const rules = c.Filter.Key.FilterRules as { Name: string; Value: string }[];
        expect(rules).toHaveLength(1);
        expect(rules[0].Name).toBe('suffix');
        return rules[0].Value;
      });
      expect(suffixes.sort()).toEqual([...suffixCaseVariants()].sort());
      expect(suffixes).toEqual(expect.arrayContaining(['.mp4', '.MP4', '.Mp4', '.mov', '.mkv', '.webm', '.avi', '.m4v', '.MOV']));
      expect(notifications.Properties.NotificationConfiguration.QueueConfigurations).toBeUndefined();
      s.template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: 's3.amazonaws.com',
        FunctionName: fnArn,
        SourceArn: { 'Fn::GetAtt': [id(s.stack.videoBucket.bucket), 'Arn'] },
      });
    });
  });

  describe('frame-extraction Lambda', () => {
    let fn: any;
    beforeAll(() => {
      fn = s.json.Resources[id(s.stack.extraction.fn)].Properties;
    });

    it('is the container image with the pinned ffmpeg (x86_64), built from its Dockerfile with the release as build arguments', () => {
      expect(fn.PackageType).toBe('Image');
      expect(fn.Architectures).toEqual(['x86_64']);
      expect(fn.Layers).toBeUndefined();
      expect(fn.Runtime).toBeUndefined();
      const imageUri = JSON.stringify(fn.Code.ImageUri);
      const manifest = JSON.parse(fs.readFileSync(path.join(s.assembly.directory, `${s.stack.artifactId}.assets.json`), 'utf8'));
      const images = Object.entries(manifest.dockerImages as Record<string, any>).filter(([hash]) => imageUri.includes(hash));
      expect(images).toHaveLength(1);
      const source = images[0][1].source;
      expect(source.dockerFile).toBe('lambda/extract-frames/Dockerfile');
      expect(source.platform).toBe('linux/amd64');
      expect(source.dockerBuildArgs).toEqual(ffmpegBuildArgs());
    });

    it('is sized and limited from the configuration', () => {
      expect(fn.MemorySize).toBe(config.lambda.memoryMiB);
      expect(fn.Timeout).toBe(config.lambda.timeoutSeconds);
      expect(fn.EphemeralStorage).toEqual({ Size: config.lambda.ephemeralStorageMiB });
      expect(fn.ReservedConcurrentExecutions).toBe(config.lambda.reservedConcurrency);
    });

    it('is sized for 256 frames of a 2-hour 1080p video: 4 vCPUs of decoding, the maximum timeout, no /tmp (derived from bench:extract)', () => {
      expect([fn.MemorySize, fn.Timeout, fn.EphemeralStorage]).toEqual([7076, 900, { Size: 512 }]);
      const vcpus = Math.min(6, Math.floor(fn.MemorySize / 1769));
      expect(vcpus).toBe(4);
      // The cost model's estimate (its constants come from the benchmark), 10 s keyframe interval,
      // camera footage decoding 3x slower than the benchmark's file, ~0.06 s of output work per frame.
      const seconds = (frames: number) => {
        const slow = { ...MEASURED_COSTS, decodeMsPerFrame: 3 * MEASURED_COSTS.decodeMsPerFrame, decodeMsPerMegapixel: 3 * MEASURED_COSTS.decodeMsPerMegapixel };
        const e = estimateCosts({ n: frames, frameCount: 7200 * 25, frameCountExact: true, durationSeconds: 7200, frameRate: 25, width: 1920, height: 1080, keyframeSeconds: 10, cores: vcpus }, slow);
        return (Math.min(e.seekMs, e.passMs) / 1000 + frames * 0.06) / vcpus;
      };
      expect(seconds(256)).toBeLessThan(fn.Timeout / 8);
      expect(seconds(1024)).toBeLessThan(fn.Timeout / 3);
    });

    it('keeps S3 events it failed on after retries in an encrypted dead-letter queue', () => {
      expect(fn.DeadLetterConfig).toEqual({ TargetArn: { 'Fn::GetAtt': [id(s.stack.extraction.failedEvents), 'Arn'] } });
      expect(s.json.Resources[id(s.stack.extraction.failedEvents)].Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
      s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 2 });
    });

    it('logs as JSON to its own log group with the configured retention', () => {
      expect(fn.LoggingConfig).toEqual({ LogFormat: 'JSON', LogGroup: { Ref: id(s.stack.extraction.logGroup) } });
      const group = s.json.Resources[id(s.stack.extraction.logGroup)] as any;
      expect(group.Properties.RetentionInDays).toBe(config.retention.logRetentionDays);
      expect(group.DeletionPolicy).toBe(deletion());
    });

    it('gets its runtime configuration, table, queue and ffmpeg paths through the shared env names', () => {
      const env = fn.Environment.Variables;
      const runtime = ExtractRuntimeConfigSchema.parse(JSON.parse(env[ENV.extractConfig]));
      expect(runtime).toEqual(extractRuntimeConfig(config));
      expect(runtime.extraction.frames).toBe(config.extraction.frames);
      expect(runtime.questions).toEqual(config.questions);
      expect(env[ENV.jobsTable]).toEqual({ Ref: id(s.stack.tables.jobs) });
      expect(env[ENV.queueUrl]).toEqual({ Ref: id(s.stack.jobQueue.queue) });
      expect(env[ENV.videoBucket]).toEqual({ Ref: id(s.stack.videoBucket.bucket) });
      expect(env[ENV.ffmpegPath]).toBe(IMAGE_FFMPEG_PATH);
      expect(env[ENV.ffprobePath]).toBe(IMAGE_FFPROBE_PATH);
    });

    it('may read uploads, write and clean frames/, write job items and send job messages: nothing more', () => {
      const roleRef = fn.Role['Fn::GetAtt'][0];
      const statements = policyStatements(s).filter((p) => p.roles.includes(roleRef)).map((p) => p.statement);
      const actions = statements.flatMap(actionsOf).sort();
      expect(actions).toEqual(
        [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          's3:DeleteObject',
          's3:GetObject',
          's3:GetObjectVersion',
          's3:ListBucket',
          's3:PutObject',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
          'sqs:SendMessage',
          // to its own dead-letter queue
          'sqs:SendMessage',
        ].sort(),
      );
      const put = statements.find((st) => actionsOf(st).includes('s3:PutObject'));
      expect(JSON.stringify(put.Resource)).toContain('/frames/*');
      const sends = statements.filter((st) => actionsOf(st).includes('sqs:SendMessage')).map((st) => st.Resource);
      expect(sends).toEqual(
        expect.arrayContaining([
          { 'Fn::GetAtt': [id(s.stack.jobQueue.queue), 'Arn'] },
          { 'Fn::GetAtt': [id(s.stack.extraction.failedEvents), 'Arn'] },
        ]),
      );
      const list = statements.find((st) => actionsOf(st).includes('s3:ListBucket'));
      expect(list.Resource).toEqual({ 'Fn::GetAtt': [id(s.stack.videoBucket.bucket), 'Arn'] });
      const ddb = statements.find((st) => actionsOf(st).includes('dynamodb:PutItem'));
      expect(ddb.Resource).toEqual({ 'Fn::GetAtt': [id(s.stack.tables.jobs), 'Arn'] });
      const role = s.json.Resources[roleRef].Properties;
      expect(role.ManagedPolicyArns).toBeUndefined();
    });
  });

  describe('reconciler', () => {
    it('runs on an EventBridge schedule from the environment, one pass at a time, with its thresholds validated', () => {
      const fnId = id(s.stack.reconciler.fn);
      const rule = s.json.Resources[id(s.stack.reconciler.schedule)].Properties;
      expect(rule.ScheduleExpression).toBe(`rate(${config.reconciler.scheduleMinutes} minute${config.reconciler.scheduleMinutes === 1 ? '' : 's'})`);
      expect(rule.State).toBe('ENABLED');
      expect(rule.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } })]);
      const fn = s.json.Resources[fnId].Properties;
      expect(fn.ReservedConcurrentExecutions).toBe(1);
      const env = fn.Environment.Variables;
      expect(JSON.parse(env[ENV.reconcilerConfig])).toEqual({
        staleAfterSeconds: config.reconciler.staleAfterMinutes * 60,
        extractionGiveUpSeconds: config.reconciler.extractionGiveUpMinutes * 60,
        maxAttempts: config.queue.maxReceiveCount,
        maxJobsPerPass: 1000,
        maxDeadLettersPerPass: 1000,
        deadLetterHoldSeconds: config.reconciler.scheduleMinutes * 60 + 60,
        leaseSeconds: config.queue.visibilityTimeoutSeconds,
        metricDimensions: { Stack: s.stack.stackName },
      });
      expect(env[ENV.queueUrl]).toEqual({ Ref: id(s.stack.jobQueue.queue) });
      expect(env[ENV.dlqUrl]).toEqual({ Ref: id(s.stack.jobQueue.deadLetterQueue) });
      // EventBridge may invoke it, nothing else.
      const perms = resourcesOfType(s, 'AWS::Lambda::Permission').filter(([, r]) => JSON.stringify(r.Properties.FunctionName).includes(fnId));
      expect(perms.map(([, r]) => r.Properties.Principal)).toEqual(['events.amazonaws.com']);
    });

    it('may only do what a pass does: query byStatus, read and conditionally update jobs, send job messages, read (never delete) the DLQ, read frame manifests', () => {
      const roleId = id(s.stack.reconciler.fn.role as any);
      const mine = policyStatements(s).filter((p) => p.roles.includes(roleId));
      const byAction = Object.fromEntries(mine.flatMap((p) => actionsOf(p.statement).map((a) => [a, JSON.stringify(p.statement.Resource)])));
      expect(Object.keys(byAction).filter((a) => !a.startsWith('logs:')).sort()).toEqual(
        ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 's3:GetObject', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage', 'sqs:SendMessage'].sort(),
      );
      expect(byAction['dynamodb:Query']).toContain('/index/byStatus');
      expect(byAction['sqs:SendMessage']).toContain(id(s.stack.jobQueue.queue));
      expect(byAction['sqs:ReceiveMessage']).toContain(id(s.stack.jobQueue.deadLetterQueue));
      expect(byAction['s3:GetObject']).toContain('/frames/*');
    });
  });

  describe('job queue', () => {
    it('is encrypted, TLS-only, long-polling, with the configured visibility timeout and a DLQ', () => {
      const q = s.json.Resources[id(s.stack.jobQueue.queue)].Properties;
      expect(q).toMatchObject({
        SqsManagedSseEnabled: true,
        VisibilityTimeout: config.queue.visibilityTimeoutSeconds,
        ReceiveMessageWaitTimeSeconds: 20,
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [id(s.stack.jobQueue.deadLetterQueue), 'Arn'] },
          maxReceiveCount: config.queue.maxReceiveCount,
        },
      });
      expect(config.queue.maxReceiveCount).toBe(3);
      const dlq = s.json.Resources[id(s.stack.jobQueue.deadLetterQueue)].Properties;
      expect(dlq.SqsManagedSseEnabled).toBe(true);
      for (const queue of [s.stack.jobQueue.queue, s.stack.jobQueue.deadLetterQueue]) {
        s.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: id(queue) }],
          PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
        });
      }
    });
  });

  describe('tables', () => {
    it('use the contract keys and indexes, on demand, with PITR and encryption', () => {
      const jobs = s.json.Resources[id(s.stack.tables.jobs)] as any;
      const answers = s.json.Resources[id(s.stack.tables.answers)] as any;
      for (const t of [jobs, answers]) {
        expect(t.Properties).toMatchObject({
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
        });
        expect(t.DeletionPolicy).toBe(deletion());
        expect(Boolean(t.Properties.DeletionProtectionEnabled)).toBe(config.retention.removalPolicy === 'retain');
      }
      expect(jobs.Properties.KeySchema).toEqual([{ AttributeName: JOBS_TABLE_KEYS.partitionKey, KeyType: 'HASH' }]);
      const index = (t: any, name: string) => t.Properties.GlobalSecondaryIndexes.find((g: any) => g.IndexName === name);
      for (const gsi of [JOBS_TABLE_KEYS.byStatus, JOBS_TABLE_KEYS.byVideo]) {
        expect(index(jobs, gsi.indexName).KeySchema).toEqual([
          { AttributeName: gsi.partitionKey, KeyType: 'HASH' },
          { AttributeName: gsi.sortKey, KeyType: 'RANGE' },
        ]);
      }
      expect(answers.Properties.KeySchema).toEqual([
        { AttributeName: ANSWERS_TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: ANSWERS_TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ]);
      expect(index(answers, ANSWERS_TABLE_KEYS.byVideo.indexName).KeySchema).toEqual([
        { AttributeName: ANSWERS_TABLE_KEYS.byVideo.partitionKey, KeyType: 'HASH' },
        { AttributeName: ANSWERS_TABLE_KEYS.byVideo.sortKey, KeyType: 'RANGE' },
      ]);
    });
  });

  describe('GPU workers', () => {
    let task: any;
    let container: any;
    beforeAll(() => {
      task = s.json.Resources[id(s.stack.workers.service.taskDefinition)].Properties;
      container = task.ContainerDefinitions[0];
    });

    it('run on an ASG of the ECS GPU-optimised AMI, min 0, IMDSv2, encrypted root volume', () => {
      const lt = resourcesOfType(s, 'AWS::EC2::LaunchTemplate')[0][1].Properties.LaunchTemplateData;
      const amiParam = s.json as any;
      const param = amiParam.Parameters[lt.ImageId.Ref];
      expect(param.Default).toBe('/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id');
      expect(lt.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
      expect(lt.BlockDeviceMappings).toEqual([{ DeviceName: '/dev/xvda', Ebs: expect.objectContaining({ Encrypted: true, VolumeType: 'gp3' }) }]);
      const userData = JSON.stringify(lt.UserData);
      expect(userData).toContain('ECS_CLUSTER=');
      expect(userData).toContain(`ECS_CONTAINER_STOP_TIMEOUT=${WORKER_STOP_TIMEOUT_SECONDS}s`);
      expect(userData.includes('ECS_ENABLE_SPOT_INSTANCE_DRAINING=true')).toBe(config.gpu.spot);
      // The host (one hop from IMDS) writes the instance type where the worker reads it to price its jobs.
      expect(userData).toContain('/latest/meta-data/instance-type > /var/lib/longsight/models/.instance-type');

      const asg = s.json.Resources[id(s.stack.workers.autoScalingGroup)].Properties;
      expect(asg.MinSize).toBe('0');
      expect(asg.MaxSize).toBe(String(Math.ceil(config.gpu.maxWorkers / taskSize(config.gpu.instanceTypes).gpusPerInstance)));
      expect(asg.DesiredCapacity).toBeUndefined();
      expect(asg.MixedInstancesPolicy.LaunchTemplate.Overrides).toEqual(config.gpu.instanceTypes.map((t) => ({ InstanceType: t })));
    });

    it('use spot or on-demand capacity as configured', () => {
      const asg = s.json.Resources[id(s.stack.workers.autoScalingGroup)].Properties;
      const dist = asg.MixedInstancesPolicy.InstancesDistribution;
      if (config.gpu.spot) {
        expect(dist).toMatchObject({ OnDemandBaseCapacity: 0, OnDemandPercentageAboveBaseCapacity: 0, SpotAllocationStrategy: 'price-capacity-optimized' });
        expect(asg.CapacityRebalance).toBe(true);
      } else {
        expect(dist).toMatchObject({ OnDemandBaseCapacity: 0, OnDemandPercentageAboveBaseCapacity: 100 });
        expect(dist.SpotAllocationStrategy).toBeUndefined();
        expect(asg.CapacityRebalance).toBe(false);
      }
    });

    it('sit behind a capacity provider with managed scaling, used by the service', () => {
      const [[cpId, cp]] = resourcesOfType(s, 'AWS::ECS::CapacityProvider');
      expect(cp.Properties.AutoScalingGroupProvider).toMatchObject({
        AutoScalingGroupArn: { Ref: id(s.stack.workers.autoScalingGroup) },
        ManagedScaling: { Status: 'ENABLED', TargetCapacity: 100 },
        ManagedTerminationProtection: 'ENABLED',
      });
      const service = s.json.Resources[id(s.stack.workers.service.service)].Properties;
      expect(service.CapacityProviderStrategy).toEqual([{ CapacityProvider: { Ref: cpId }, Weight: 1 }]);
      expect(service.DesiredCount).toBe(0);
      s.template.hasResourceProperties('AWS::ECS::Cluster', { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] });
    });

    it('reserve one GPU per task, built from container/Dockerfile, with health check and a 120 s stop timeout', () => {
      expect(task.RequiresCompatibilities).toEqual(['EC2']);
      expect(container.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '1' }]);
      expect(container.StopTimeout).toBe(120);
      expect(container.HealthCheck).toMatchObject({ Command: WORKER_HEALTH_CHECK_COMMAND });
      expect(container.HealthCheck.Command).toEqual(['CMD', 'node', '/app/dist/container/worker/health.js']);
      expect(container.MemoryReservation).toBe(taskSize(config.gpu.instanceTypes).memoryReservationMiB);
      expect(container.LogConfiguration.Options['awslogs-group']).toEqual({ Ref: id(s.stack.workers.logGroup) });

      const assets = JSON.parse(fs.readFileSync(path.join(s.assembly.directory, `${s.stack.stackName}.assets.json`), 'utf8'));
      const images = Object.entries(assets.dockerImages as Record<string, any>).filter(([, a]) => a.source.dockerFile === 'container/Dockerfile');
      expect(images).toHaveLength(1);
      expect(images[0][1].source.platform).toBe('linux/amd64');
      expect(JSON.stringify(container.Image)).toContain(images[0][0]);
      // The staged build context is the repository without node_modules, outputs or git.
      const context = path.join(s.assembly.directory, images[0][1].source.directory);
      const entries = fs.readdirSync(context);
      expect(entries).toEqual(expect.arrayContaining(['container', 'lib', 'package.json', 'package-lock.json']));
      for (const excluded of ['node_modules', 'cdk.out', '.git', 'test', 'dist']) expect(entries).not.toContain(excluded);
    });

    it('get queue, tables, model location and a valid worker config through the shared env names', () => {
      const env = Object.fromEntries((container.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));
      expect(env[ENV.queueUrl]).toEqual({ Ref: id(s.stack.jobQueue.queue) });
      expect(env[ENV.dlqUrl]).toEqual({ Ref: id(s.stack.jobQueue.deadLetterQueue) });
      expect(env[ENV.jobsTable]).toEqual({ Ref: id(s.stack.tables.jobs) });
      expect(env[ENV.answersTable]).toEqual({ Ref: id(s.stack.tables.answers) });
      expect(env[ENV.modelUri]).toBe(config.model.artifactUri);
      expect(env[ENV.modelId]).toBe(config.model.id);
      expect(env[ENV.modelCacheDir]).toBe('/models');
      const worker = WorkerConfigSchema.parse(JSON.parse(env[ENV.workerConfig] as string));
      expect(worker).toMatchObject({
        jobsPerWorker: config.gpu.jobsPerWorker,
        visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
        maxReceiveCount: config.queue.maxReceiveCount,
        stopTimeoutSeconds: 120,
        metrics: { namespace: METRICS_NAMESPACE, dimensions: { Stack: `Longsight-${envName}` } },
      });
      // Each job is priced by the instance it ran on: the environment's table for its instance types.
      expect(worker.pricing.instanceTypeFile).toBe('/models/.instance-type');
      expect(Object.keys(worker.pricing.usdPerHour)).toEqual(config.gpu.instanceTypes);
      for (const t of config.gpu.instanceTypes) expect(worker.pricing.usdPerHour[t]).toBe(config.pricing.usdPerHour[t] ?? GPU_INSTANCE_TYPES[t].onDemandUsdPerHour);
      // The model cache on the instance survives task restarts.
      expect(container.MountPoints).toEqual([{ ContainerPath: '/models', ReadOnly: false, SourceVolume: 'model-cache' }]);
    });

    it('scale tasks from 0 to max on backlog = visible + in-flight, exactly ceil(backlog / jobs per worker)', () => {
      const [[targetId, target]] = resourcesOfType(s, 'AWS::ApplicationAutoScaling::ScalableTarget');
      expect(target.Properties).toMatchObject({ MinCapacity: 0, MaxCapacity: config.gpu.maxWorkers, ScalableDimension: 'ecs:service:DesiredCount' });
      const policies = resourcesOfType(s, 'AWS::ApplicationAutoScaling::ScalingPolicy');
      // Only the backlog policy's two halves: no visible-only policy, no CPU target tracking.
      expect(policies).toHaveLength(2);
      for (const [, p] of policies) {
        expect(p.Properties.ScalingTargetId).toEqual({ Ref: targetId });
        expect(p.Properties.PolicyType).toBe('StepScaling');
        expect(p.Properties.StepScalingPolicyConfiguration.AdjustmentType).toBe('ExactCapacity');
      }
      const alarms = resourcesOfType(s, 'AWS::CloudWatch::Alarm').filter(([, a]) =>
        (a.Properties.AlarmActions ?? []).some((x: any) => policies.some(([pid]) => x.Ref === pid)),
      );
      expect(alarms).toHaveLength(2);
      for (const [, a] of alarms) {
        const metrics = a.Properties.Metrics as any[];
        expect(metrics.find((m) => m.ReturnData !== false).Expression).toBe('visible + inflight');
        const names = metrics.filter((m) => m.MetricStat).map((m) => m.MetricStat.Metric.MetricName).sort();
        expect(names).toEqual(['ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesVisible']);
        for (const m of metrics.filter((x) => x.MetricStat)) {
          expect(m.MetricStat.Metric.Dimensions).toEqual([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(s.stack.jobQueue.queue), 'QueueName'] } }]);
        }
      }
      // Evaluate the deployed policy the way Application Auto Scaling does, for every backlog.
      const lower = alarms.find(([, a]) => a.Properties.ComparisonOperator === 'LessThanOrEqualToThreshold')![1].Properties;
      const upper = alarms.find(([, a]) => a.Properties.ComparisonOperator === 'GreaterThanOrEqualToThreshold')![1].Properties;
      const policyOf = (alarm: any) => policies.find(([pid]) => pid === alarm.AlarmActions[0].Ref)![1].Properties.StepScalingPolicyConfiguration.StepAdjustments as any[];
      const desired = (backlog: number): number => {
        const [alarm, steps] = backlog <= lower.Threshold ? [lower, policyOf(lower)] : backlog >= upper.Threshold ? [upper, policyOf(upper)] : [undefined, []];
        if (!alarm) throw new Error(`backlog ${backlog} fires no alarm`);
        const d = backlog - alarm.Threshold;
        const step = steps.find((x) => (x.MetricIntervalLowerBound ?? -Infinity) <= d && d < (x.MetricIntervalUpperBound ?? Infinity)) ??
          steps.find((x) => x.MetricIntervalUpperBound === 0 && d <= 0);
        return step.ScalingAdjustment;
      };
      expect(desired(0)).toBe(0);
      for (let b = 1; b <= config.gpu.maxWorkers * config.gpu.jobsPerWorker + 3; b++) {
        expect(desired(b)).toBe(Math.min(Math.ceil(b / config.gpu.jobsPerWorker), config.gpu.maxWorkers));
      }
    });

    it('may read the model artifact location: the task role only, only that prefix', () => {
      const { bucket, prefix } = parseS3Uri(config.model.artifactUri);
      const taskRoleId = id(s.stack.workers.service.taskDefinition.taskRole as any);
      const mentions = policyStatements(s).filter((p) => JSON.stringify(p.statement).includes(`:s3:::${bucket}`));
      expect(mentions.length).toBeGreaterThan(0);
      for (const m of mentions) expect(m.roles).toEqual([taskRoleId]);
      const get = mentions.find((m) => actionsOf(m.statement).includes('s3:GetObject'))!.statement;
      expect(actionsOf(get)).toEqual(['s3:GetObject']);
      expect(JSON.stringify(get.Resource)).toContain(`:s3:::${bucket}/${prefix}*`);
      const list = mentions.find((m) => actionsOf(m.statement).includes('s3:ListBucket'))!.statement;
      expect(list.Condition).toEqual({ StringLike: { 's3:prefix': [`${prefix}*`] } });
    });

    it('may consume the queue, read frames, and write job and answer items', () => {
      const taskRoleId = id(s.stack.workers.service.taskDefinition.taskRole as any);
      const actions = policyStatements(s).filter((p) => p.roles.includes(taskRoleId)).flatMap((p) => actionsOf(p.statement));
      expect(actions).toEqual(
        expect.arrayContaining([
          'sqs:ReceiveMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:GetItem',
          'dynamodb:Query',
          's3:GetObject',
          'ecs:UpdateTaskProtection',
        ]),
      );
      expect(actions).not.toContain('sqs:SendMessage');
      // It writes the answers export, and only there.
      const puts = policyStatements(s).filter((p) => p.roles.includes(taskRoleId) && actionsOf(p.statement).includes('s3:PutObject'));
      expect(puts).toHaveLength(1);
      expect(actionsOf(puts[0].statement)).toEqual(['s3:PutObject']);
      expect(JSON.stringify(puts[0].statement.Resource)).toContain('/index/*');
      expect(JSON.stringify(puts[0].statement.Resource)).toContain(id(s.stack.videoBucket.bucket));
    });

    it('exports every finished job (its cost from the pricing table the worker is given)', () => {
      const env = Object.fromEntries((container.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));
      const worker = WorkerConfigSchema.parse(JSON.parse(env[ENV.workerConfig] as string));
      expect(worker.export).toEqual({ enabled: true });
    });

    it('may only read the DLQ (ReceiveMessage, and show what it read again): never delete or move its messages', () => {
      const taskRoleId = id(s.stack.workers.service.taskDefinition.taskRole as any);
      const dlqArn = JSON.stringify({ 'Fn::GetAtt': [id(s.stack.jobQueue.deadLetterQueue), 'Arn'] });
      const onDlq = policyStatements(s).filter((p) => JSON.stringify(p.statement.Resource).includes(dlqArn));
      const workerOnDlq = onDlq.filter((p) => p.roles.includes(taskRoleId));
      expect(workerOnDlq).toHaveLength(1);
      expect(workerOnDlq[0].statement.Resource).toEqual(JSON.parse(dlqArn));
      expect(actionsOf(workerOnDlq[0].statement).sort()).toEqual(['sqs:ChangeMessageVisibility', 'sqs:ReceiveMessage']);
    });
  });

  describe('archive: backfill state machine, answers table, Athena workgroup', () => {
    const sm = () => resourcesOfType(s, 'AWS::StepFunctions::StateMachine');
    /** The state machine's definition with the template's references as <LogicalId>. */
    const definition = () => {
      const d = sm()[0][1].Properties.DefinitionString;
      const text = d['Fn::Join'][1].map((part: any) => (typeof part === 'string' ? part : part.Ref ? `<${part.Ref}>` : `<${part['Fn::GetAtt'][0]}.${part['Fn::GetAtt'][1]}>`)).join('');
      return JSON.parse(text);
    };

    it('is one state machine: a Choice between the bucket listing and a CLI-written list, two Distributed Maps from the configuration', () => {
      expect(sm()).toHaveLength(1);
      const def = definition();
      expect(def.QueryLanguage).toBe('JSONata');
      expect(def.StartAt).toBe('Source');
      expect(def.States.Source).toMatchObject({ Type: 'Choice', Choices: [{ Condition: "{% $states.input.source = 'list' %}", Next: 'SelectedObjects' }], Default: 'BucketListing' });
      const bucket = `<${id(s.stack.videoBucket.bucket)}>`;
      const results = `<${id(s.stack.indexResults.bucket)}>`;
      for (const [name, reader] of [
        ['BucketListing', { Resource: 'arn:<AWS::Partition>:states:::s3:listObjectsV2', Arguments: { Bucket: bucket, Prefix: '{% $states.input.prefix %}' } }],
        ['SelectedObjects', { Resource: 'arn:<AWS::Partition>:states:::s3:getObject', ReaderConfig: { InputType: 'JSON' }, Arguments: { Bucket: results, Key: '{% $states.input.itemsKey %}' } }],
      ] as const) {
        const map = def.States[name];
        expect(map).toMatchObject({
          Type: 'Map',
          MaxConcurrency: backfillConcurrency(config),
          ToleratedFailurePercentage: config.index.toleratedFailurePercentage,
          ItemReader: reader,
          ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
          ResultWriter: { Arguments: { Bucket: results, Prefix: "{% 'backfill/' & $states.context.Execution.Name %}" }, WriterConfig: { OutputType: 'JSONL', Transformation: 'FLATTEN' } },
        });
        expect(map.MaxConcurrency).toBeLessThanOrEqual(config.lambda.reservedConcurrency);
        const states = map.ItemProcessor.States;
        expect(states[`${name}IsVideo`]).toMatchObject({ Type: 'Choice', Choices: [{ Condition: IS_VIDEO_CONDITION, Next: `${name}Extract` }], Default: `${name}NotAVideo` });
        const extract = states[`${name}Extract`];
        expect(extract.Resource).toBe('arn:<AWS::Partition>:states:::lambda:invoke');
        expect(extract.Arguments.FunctionName).toBe(`<${id(s.stack.extraction.fn)}.Arn>`);
        // The record S3 would have sent: the extraction handler parses it as any upload event.
        expect(extract.Arguments.Payload.Records).toEqual([
          expect.objectContaining({
            eventSource: 'aws:s3',
            eventName: 'ObjectCreated:Backfill',
            s3: expect.objectContaining({ bucket: { name: bucket }, object: { key: '{% $encodeUrlComponent($states.input.Key) %}', size: '{% $states.input.Size %}', eTag: '{% $states.input.Etag %}' } }),
          }),
        ]);
        expect(extract.Output).toBe('{% $states.result.Payload.results %}');
        expect(extract.Retry.map((r: any) => r.ErrorEquals[0])).toEqual(expect.arrayContaining(['Lambda.TooManyRequestsException', 'States.ALL']));
        expect(states[`${name}NotAVideo`].Output).toEqual([expect.objectContaining({ outcome: 'ignored', key: '{% $states.input.Key %}' })]);
      }
    });

    it('logs every event to its own log group and traces with X-Ray', () => {
      const p = sm()[0][1].Properties;
      expect(p.StateMachineType).toBe('STANDARD');
      expect(p.TracingConfiguration).toEqual({ Enabled: true });
      expect(p.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: false, Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [id(s.stack.backfill.logGroup), 'Arn'] } } }] });
    });

    it('may list the video bucket, invoke the extraction function, use the results bucket and run its own child executions: nothing more', () => {
      const roleId = id(s.stack.backfill.stateMachine.role as any);
      const mine = policyStatements(s).filter((p) => p.roles.includes(roleId)).map((p) => p.statement);
      const on = (action: string) => mine.filter((st) => actionsOf(st).includes(action)).map((st) => JSON.stringify(st.Resource));
      const data = mine.flatMap(actionsOf).filter((a) => /^(s3|lambda|states|dynamodb|sqs):/.test(a));
      expect([...new Set(data)].sort()).toEqual(
        ['lambda:InvokeFunction', 's3:AbortMultipartUpload', 's3:GetObject', 's3:ListBucket', 's3:ListMultipartUploadParts', 's3:PutObject', 'states:DescribeExecution', 'states:RedriveExecution', 'states:StartExecution', 'states:StopExecution'].sort(),
      );
      expect(on('s3:ListBucket')).toEqual([JSON.stringify({ 'Fn::GetAtt': [id(s.stack.videoBucket.bucket), 'Arn'] })]);
      for (const a of ['s3:GetObject', 's3:PutObject']) for (const r of on(a)) expect(r).toContain(id(s.stack.indexResults.bucket));
      for (const r of on('lambda:InvokeFunction')) expect(r).toContain(id(s.stack.extraction.fn));
      for (const r of [...on('states:StartExecution'), ...on('states:DescribeExecution')]) expect(r).toContain(id(s.stack.backfill.stateMachine));
    });

    it('the Glue table reads index/ with exactly the export schema of the contracts (data columns, then profile and dt partitions)', () => {
      const [[, table]] = resourcesOfType(s, 'AWS::Glue::Table');
      const t = table.Properties.TableInput;
      expect(t.Name).toBe('answers');
      expect(table.Properties.DatabaseName).toBe(`longsight_${envName}`);
      expect(t.StorageDescriptor.Columns).toEqual(EXPORT_DATA_COLUMNS.map((c) => ({ Name: c.name, Type: c.type, Comment: c.comment })));
      expect(t.PartitionKeys).toEqual(EXPORT_PARTITION_COLUMNS.map((c) => ({ Name: c.name, Type: c.type, Comment: c.comment })));
      expect(t.StorageDescriptor.Location).toEqual({ 'Fn::Join': ['', ['s3://', { Ref: id(s.stack.videoBucket.bucket) }, '/index/']] });
      expect(t.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe('org.openx.data.jsonserde.JsonSerDe');
      const [[dbId, db]] = resourcesOfType(s, 'AWS::Glue::Database');
      expect(db.Properties.DatabaseInput.Name).toBe(`longsight_${envName}`);
      expect((s.json.Resources[resourcesOfType(s, 'AWS::Glue::Table')[0][0]] as any).DependsOn).toContain(dbId);
    });

    it('the Athena workgroup enforces encrypted results in the results bucket and the scan limit from config', () => {
      const [[, wg]] = resourcesOfType(s, 'AWS::Athena::WorkGroup');
      expect(wg.Properties.Name).toBe(`longsight-${envName}`);
      expect(wg.Properties.WorkGroupConfiguration).toEqual({
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        BytesScannedCutoffPerQuery: Math.round(config.index.queryScanLimitGiB * 2 ** 30),
        EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
        ResultConfiguration: {
          OutputLocation: { 'Fn::Join': ['', ['s3://', { Ref: id(s.stack.indexResults.bucket) }, '/athena/']] },
          EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
        },
      });
      const results = s.json.Resources[id(s.stack.indexResults.bucket)] as any;
      expect(results.Properties).toMatchObject({
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LoggingConfiguration: { DestinationBucketName: { Ref: expect.stringMatching(/^AccessLogs/) } },
      });
      expect(results.Properties.LifecycleConfiguration.Rules).toEqual(expect.arrayContaining([expect.objectContaining({ ExpirationInDays: config.index.resultExpiryDays, Status: 'Enabled' })]));
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id(s.stack.indexResults.bucket) },
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    });

    it("outputs what `longsight index/query --stack` read: the profile the Lambda's jobs carry, the state machine, the workgroup", () => {
      const out = s.json.Outputs!;
      expect(out[ARCHIVE_OUTPUTS.profile].Value).toBe(extractionProfile(extractRuntimeConfig(config)).id);
      expect(out[ARCHIVE_OUTPUTS.profile].Value).toMatch(/^p-[0-9a-f]{12}$/);
      expect(out[ARCHIVE_OUTPUTS.stateMachine].Value).toEqual({ Ref: id(s.stack.backfill.stateMachine) });
      expect(out[ARCHIVE_OUTPUTS.resultsBucket].Value).toEqual({ Ref: id(s.stack.indexResults.bucket) });
      expect(out[ARCHIVE_OUTPUTS.workGroup].Value).toBe(`longsight-${envName}`);
      expect(out[ARCHIVE_OUTPUTS.database].Value).toBe(`longsight_${envName}`);
      expect(out[ARCHIVE_OUTPUTS.instanceType].Value).toBe(config.gpu.instanceTypes[0]);
      expect(Number(out[ARCHIVE_OUTPUTS.jobsPerWorker].Value)).toBe(config.gpu.jobsPerWorker);
    });
  });

  it('grants no wildcard actions on data resources (S3, DynamoDB, SQS) and no full-service rights anywhere', () => {
    for (const { statement } of policyStatements(s)) {
      for (const action of actionsOf(statement)) {
        expect(action).not.toBe('*');
        expect(action).not.toMatch(/^[a-z0-9-]+:\*$/);
        if (/^(s3|dynamodb|sqs):/.test(action)) expect(action).not.toContain('*');
      }
    }
  });

  describe('monitoring', () => {
    const alarmOn = (metricName: string) =>
      resourcesOfType(s, 'AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.MetricName === metricName);

    it('alarms on DLQ depth > 0, oldest message age, Lambda errors, throttles and dropped events, worker task failures, all to the encrypted topic', () => {
      const topicId = id(s.stack.monitoring.alarmTopic);
      s.template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
      const expectAlarm = (metricName: string, threshold: number, dims: unknown) => {
        const found = alarmOn(metricName).filter(([, a]) => JSON.stringify(a.Properties.Dimensions ?? []).includes(JSON.stringify(dims)));
        expect(found).toHaveLength(1);
        expect(found[0][1].Properties).toMatchObject({ Threshold: threshold, ComparisonOperator: 'GreaterThanThreshold', AlarmActions: [{ Ref: topicId }] });
      };
      expectAlarm('ApproximateNumberOfMessagesVisible', 0, { 'Fn::GetAtt': [id(s.stack.jobQueue.deadLetterQueue), 'QueueName'] });
      expectAlarm('ApproximateAgeOfOldestMessage', config.queue.oldestMessageAlarmSeconds, { 'Fn::GetAtt': [id(s.stack.jobQueue.queue), 'QueueName'] });
      expectAlarm('Errors', 0, { Ref: id(s.stack.extraction.fn) });
      expectAlarm('Throttles', 0, { Ref: id(s.stack.extraction.fn) });
      expectAlarm('ApproximateNumberOfMessagesVisible', 0, { 'Fn::GetAtt': [id(s.stack.extraction.failedEvents), 'QueueName'] });
      expectAlarm('WorkerTaskFailures', 0, { 'Fn::GetAtt': [id(s.stack.workers.cluster), 'Arn'] });
    });

    it('counts failed worker tasks from ECS task state-change events', () => {
      s.template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.ecs'],
          'detail-type': ['ECS Task State Change'],
          detail: Match.objectLike({ clusterArn: [{ 'Fn::GetAtt': [id(s.stack.workers.cluster), 'Arn'] }], lastStatus: ['STOPPED'] }),
        },
        Targets: [Match.objectLike({ Arn: Match.anyValue() })],
      });
      s.template.hasResourceProperties('AWS::Logs::MetricFilter', {
        MetricTransformations: [Match.objectLike({ MetricNamespace: 'Longsight', MetricName: 'WorkerTaskFailures', MetricValue: '1' })],
      });
      s.template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: `/aws/events/Longsight-${envName}/worker-task-failures` });
      const [[, policy]] = resourcesOfType(s, 'AWS::Logs::ResourcePolicy');
      const document = JSON.stringify(policy.Properties.PolicyDocument);
      for (const fragment of ['events.amazonaws.com', 'logs:PutLogEvents', 'logs:CreateLogStream']) expect(document).toContain(fragment);
      expect(document).toContain(id(s.stack.monitoring.node.findChild('WorkerTaskFailureEvents') as any));
    });

    it('has one dashboard with backlog, jobs done/failed, job latency and GPU workers running', () => {
      const dashboards = resourcesOfType(s, 'AWS::CloudWatch::Dashboard');
      expect(dashboards).toHaveLength(1);
      const body = JSON.stringify(dashboards[0][1].Properties.DashboardBody);
      for (const title of ['Queue backlog', 'Jobs done / failed', 'Job latency (ms)', 'GPU workers running']) expect(body).toContain(title);
      for (const metric of [WORKER_METRICS.jobsDone, WORKER_METRICS.jobsFailed, WORKER_METRICS.jobLatencyMs, 'RunningTaskCount', 'GroupInServiceInstances', 'visible + inflight']) {
        expect(body).toContain(metric);
      }
      expect(body).toContain(`\\"Stack\\",\\"Longsight-${envName}\\"`);
    });
  });

  it('exports the names the CLI resolves a deployed environment from', () => {
    expect(Object.keys(s.json.Outputs ?? {})).toEqual(
      expect.arrayContaining(['ExtractFailedEventsQueueUrl', 'VideoBucketName', 'JobsTableName', 'AnswersTableName', 'JobQueueUrl', 'DeadLetterQueueUrl', 'ClusterName', 'WorkerServiceName', 'AlarmTopicArn', 'DashboardName', ...Object.values(ARCHIVE_OUTPUTS)]),
    );
  });

  it('has zero unacknowledged cdk-nag AwsSolutions findings, each acknowledgement with a reason', () => {
    const report = new AwsSolutionsChecks(s.app).validateScope(s.stack);
    const findings = report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId).join(', ')}`);
    expect(findings).toEqual([]);
    // Acknowledgements are per finding (rule[finding]) on the construct concerned, never stack-wide.
    const acks = s.stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules').map((m) => ({ path: c.node.path, data: m.data as Record<string, string> })))
      .flatMap(({ path: where, data }) => Object.entries(data).map(([rule, reason]) => ({ where, rule, reason })))
      .filter((a) => a.rule.includes('AwsSolutions-'));
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) {
      expect(a.where).not.toBe(s.stack.node.path);
      expect(a.reason.length).toBeGreaterThanOrEqual(60);
    }
    expect(new Set(acks.map((a) => a.reason)).size).toBe(acks.length);
  });
});

// Runs last (it changes an already-checked stack): cdk-nag is wired into the app itself, so an
// unacknowledged finding fails `cdk synth`, not only this test suite.
describe('cdk-nag in the app', () => {
  it('fails synth on a non-compliant resource, naming the rule', () => {
    const s = synthesized.get(ENV_NAMES[0])!;
    new sqs.Queue(s.stack, 'NonCompliant', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    expect(() => s.app.synth({ force: true })).toThrow(/AwsSolutions-SQS3[\s\S]*NonCompliant|NonCompliant[\s\S]*AwsSolutions-SQS3/);
  });
});
