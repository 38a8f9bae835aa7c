/**
 * The GPU workers: an ECS cluster on EC2 GPU instances (ECS GPU-optimised AMI) behind a capacity
 * provider with managed scaling, and a queue-processing service whose tasks each reserve one GPU.
 * Tasks follow the job backlog from 0 to gpu.maxWorkers; instances follow the tasks, so an idle
 * environment runs (and bills) no GPU at all.
 */
import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as ecsPatterns from 'aws-cdk-lib/aws-ecs-patterns';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EnvironmentConfig, GPU_INSTANCE_TYPES, instancePrices, usdPerGpuHour } from '../contracts/env-config';
import { ENV } from '../contracts/runtime-env';
import { FRAMES_PREFIX, INDEX_PREFIX } from '../contracts/s3-layout';
import { METRICS_NAMESPACE, WorkerConfig, WorkerConfigSchema } from '../contracts/worker-config';
import { scaleOnBacklog } from './backlog-scaling';
import { grantModelArtifactRead } from './model-artifact-access';
import { DOCKER_CONTEXT_EXCLUDE, REPO_ROOT, WORKER_DOCKERFILE } from './paths';

/** The worker's health check; container/worker/health.ts, compiled into the image under /app/dist. */
export const WORKER_HEALTH_CHECK_COMMAND = ['CMD', 'node', '/app/dist/container/worker/health.js'];
/** ECS sends SIGTERM, waits this long, then SIGKILL: the worker finishes or releases its job in it. */
export const WORKER_STOP_TIMEOUT_SECONDS = 120;
export const WORKER_CONTAINER_NAME = 'worker';
/** On the instance: model packages persist here across task restarts (mounted at MODEL_CACHE_IN_CONTAINER). */
export const MODEL_CACHE_ON_HOST = '/var/lib/longsight/models';
export const MODEL_CACHE_IN_CONTAINER = '/models';
/**
 * The instance type, written by the instance's user data from its metadata into the shared cache
 * folder: the container cannot reach the instance metadata (hop limit 1, below), and the worker
 * prices each job by the instance it ran on (spot pools mix types).
 */
export const INSTANCE_TYPE_FILE = '.instance-type';
/** Root volume of a GPU instance: the CUDA image (~10 GB) plus model packages (7B fp16 ~16 GB) with room to update both. */
export const ROOT_VOLUME_GIB = 200;

export interface TaskSize {
  /** Tasks (= GPUs) one instance holds: the smallest GPU count among the allowed types. */
  gpusPerInstance: number;
  /** CPU units reserved per task. */
  cpu: number;
  /** Soft memory reservation per task (MiB). */
  memoryReservationMiB: number;
}

/** The environment's price table (built-in on-demand prices, its `pricing.usdPerHour` on top) for the instance types it runs. */
export function workerPrices(config: EnvironmentConfig): Record<string, number> {
  const table = instancePrices(config.pricing.usdPerHour);
  return Object.fromEntries(config.gpu.instanceTypes.map((t) => [t, table[t]]));
}

/**
 * What one GPU-hour of the preferred (first) instance type costs in the environment's price table,
 * for the archive's cost estimates (`longsight index --dry-run`, the report); a job's own cost uses
 * the type it ran on.
 */
export function preferredUsdPerGpuHour(config: EnvironmentConfig): number {
  const type = config.gpu.instanceTypes[0];
  return usdPerGpuHour(type, workerPrices(config))!;
}

/**
 * One task per GPU, sized so it fits every allowed instance type: the per-GPU share of the
 * smallest type, less headroom for the OS and the ECS agent (about 15% of memory, a quarter vCPU).
 */
export function taskSize(instanceTypes: readonly string[]): TaskSize {
  const specs = instanceTypes.map((t) => {
    const spec = GPU_INSTANCE_TYPES[t];
    if (!spec) throw new Error(`gpu.instanceTypes: unknown type "${t}"`);
    return spec;
  });
  const gpusPerInstance = Math.min(...specs.map((s) => s.gpus));
  const vcpusPerGpu = Math.min(...specs.map((s) => s.vcpus / s.gpus));
  const memoryGiBPerGpu = Math.min(...specs.map((s) => s.memoryGiB / s.gpus));
  return {
    gpusPerInstance,
    cpu: Math.floor(vcpusPerGpu * 1024 - 256),
    memoryReservationMiB: Math.floor(memoryGiBPerGpu * 1024 * 0.85),
  };
}

export interface GpuWorkerServiceProps {
  config: EnvironmentConfig;
  removalPolicy: RemovalPolicy;
  vpc: ec2.IVpc;
  queue: sqs.IQueue;
  /** The job queue's DLQ: the worker peeks at it (never takes a message) to mark jobs whose worker died on every delivery FAILED. */
  deadLetterQueue: sqs.IQueue;
  jobsTable: dynamodb.ITable;
  answersTable: dynamodb.ITable;
  videoBucket: s3.IBucket;
  /** Dimensions the worker attaches to its custom metrics (the stack name). */
  metricDimensions: Record<string, string>;
}

export class GpuWorkerService extends Construct {
  readonly cluster: ecs.Cluster;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly capacityProvider: ecs.AsgCapacityProvider;
  readonly service: ecsPatterns.QueueProcessingEc2Service;
  readonly logGroup: logs.LogGroup;
  readonly workerConfig: WorkerConfig;

  constructor(scope: Construct, id: string, props: GpuWorkerServiceProps) {
    super(scope, id);
    const { config } = props;
    const size = taskSize(config.gpu.instanceTypes);

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      // Per-task CPU/memory/GPU metrics and RunningTaskCount for the dashboard.
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    this.autoScalingGroup = this.gpuInstances(props, size);
    this.capacityProvider = new ecs.AsgCapacityProvider(this, 'GpuCapacity', {
      autoScalingGroup: this.autoScalingGroup,
      machineImageType: ecs.MachineImageType.AMAZON_LINUX_2,
      // ECS launches instances for tasks that cannot be placed, and removes empty ones.
      enableManagedScaling: true,
      targetCapacityPercent: 100,
      // Instances running tasks are protected from ASG scale-in; ECS drains them first.
      enableManagedTerminationProtection: true,
      enableManagedDraining: true,
    });
    this.cluster.addAsgCapacityProvider(this.capacityProvider);

    this.logGroup = new logs.LogGroup(this, 'WorkerLogs', {
      retention: config.retention.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });

    this.workerConfig = WorkerConfigSchema.parse({
      jobsPerWorker: config.gpu.jobsPerWorker,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      maxReceiveCount: config.queue.maxReceiveCount,
      stopTimeoutSeconds: WORKER_STOP_TIMEOUT_SECONDS,
      metrics: { namespace: METRICS_NAMESPACE, dimensions: props.metricDimensions },
      export: { enabled: true },
      pricing: { instanceTypeFile: `${MODEL_CACHE_IN_CONTAINER}/${INSTANCE_TYPE_FILE}`, usdPerHour: workerPrices(config) },
    });

    this.service = new ecsPatterns.QueueProcessingEc2Service(this, 'Service', {
      cluster: this.cluster,
      queue: props.queue,
      image: ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: WORKER_DOCKERFILE,
        exclude: DOCKER_CONTEXT_EXCLUDE,
        platform: Platform.LINUX_AMD64,
      }),
      containerName: WORKER_CONTAINER_NAME,
      gpuCount: 1,
      cpu: size.cpu,
      memoryReservationMiB: size.memoryReservationMiB,
      environment: {
        [ENV.queueUrl]: props.queue.queueUrl,
        [ENV.dlqUrl]: props.deadLetterQueue.queueUrl,
        [ENV.jobsTable]: props.jobsTable.tableName,
        [ENV.answersTable]: props.answersTable.tableName,
        [ENV.videoBucket]: props.videoBucket.bucketName,
        [ENV.modelUri]: config.model.artifactUri,
        [ENV.modelId]: config.model.id,
        [ENV.modelCacheDir]: MODEL_CACHE_IN_CONTAINER,
        [ENV.workerConfig]: JSON.stringify(this.workerConfig),
        [ENV.logLevel]: 'info',
      },
      logDriver: ecs.LogDrivers.awsLogs({ streamPrefix: 'worker', logGroup: this.logGroup }),
      capacityProviderStrategies: [{ capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 }],
      minScalingCapacity: 0,
      maxScalingCapacity: config.gpu.maxWorkers,
      // GPU work does not show in CPU: scaling follows the queue only.
      disableCpuBasedScaling: true,
      // Workers serve no traffic: a deploy stops old tasks first (their jobs are released to the
      // queue on SIGTERM) instead of needing a spare GPU instance per worker.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { enable: true, rollback: true },
      enableECSManagedTags: true,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });

    this.finishTaskDefinition();
    this.replaceScaling(config);
    this.grantWorkerAccess(props);
  }

  /** The ASG on the ECS GPU AMI: min 0, mixed instance types, spot or on-demand per config. */
  private gpuInstances(props: GpuWorkerServiceProps, size: TaskSize): autoscaling.AutoScalingGroup {
    const { config } = props;
    const role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'ECS container instance (GPU workers): register with the cluster, nothing else',
    });
    const securityGroup = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc: props.vpc,
      description: 'GPU worker instances: no inbound traffic; outbound to AWS APIs',
      allowAllOutbound: true,
    });
    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      `mkdir -p ${MODEL_CACHE_ON_HOST}`,
      // The worker runs as a non-root user: the shared cache must be writable for it.
      `chmod 1777 ${MODEL_CACHE_ON_HOST}`,
      // IMDSv2 from the host (one hop): the worker prices its jobs by this instance type.
      `IMDS_TOKEN=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') && ` +
        `curl -sf -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" http://169.254.169.254/latest/meta-data/instance-type > ${MODEL_CACHE_ON_HOST}/${INSTANCE_TYPE_FILE} || true`,
      `echo ECS_CONTAINER_STOP_TIMEOUT=${WORKER_STOP_TIMEOUT_SECONDS}s >> /etc/ecs/ecs.config`,
      ...(config.gpu.spot ? ['echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config'] : []),
    );
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ecs.EcsOptimizedImage.amazonLinux2(ecs.AmiHardwareType.GPU),
      userData,
      role,
      securityGroup,
      requireImdsv2: true,
      // Containers (bridge network, one hop further) cannot reach the instance role through IMDS.
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(ROOT_VOLUME_GIB, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3, deleteOnTermination: true }),
        },
      ],
    });
    const asg = new autoscaling.AutoScalingGroup(this, 'GpuInstances', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      minCapacity: 0,
      maxCapacity: Math.ceil(config.gpu.maxWorkers / size.gpusPerInstance),
      mixedInstancesPolicy: {
        launchTemplate,
        // In config order: the first type is preferred for on-demand, all are pooled for spot.
        launchTemplateOverrides: config.gpu.instanceTypes.map((t) => ({ instanceType: new ec2.InstanceType(t) })),
        instancesDistribution: config.gpu.spot
          ? {
              onDemandBaseCapacity: 0,
              onDemandPercentageAboveBaseCapacity: 0,
              spotAllocationStrategy: autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
            }
          : {
              onDemandBaseCapacity: 0,
              onDemandPercentageAboveBaseCapacity: 100,
              onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
            },
      },
      // Replace spot instances at risk before they are interrupted.
      capacityRebalance: config.gpu.spot,
      groupMetrics: [autoscaling.GroupMetrics.all()],
    });
    Validations.of(role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Action::ecs:Submit*]',
        reason: "The ECS agent's state-change calls (ecs:SubmitTaskStateChange etc.), added by CDK's cluster configuration and limited to this cluster's ARN.",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'ecs:DiscoverPollEndpoint and ecr:GetAuthorizationToken have no resource-level permissions; ecs:Poll/StartTelemetrySession are conditioned on this cluster. No data resource is reachable with this role.',
      },
    );
    Validations.of(asg).acknowledge(
      {
        id: 'AwsSolutions-EC26',
        reason: 'The rule cannot read the mixed-instances launch template; its only volume (the root, /dev/xvda) is encrypted there (asserted in test/stack).',
      },
      {
        id: 'AwsSolutions-AS3',
        reason: 'Scaling is driven by the ECS capacity provider from the job backlog; the dashboard graphs instances in service and alarms watch the queue, so per-event notifications would only repeat that.',
      },
    );
    return asg;
  }

  /** Settings the pattern does not expose: stop timeout, health check, the model cache volume, desired 0. */
  private finishTaskDefinition(): void {
    const taskDefinition = this.service.taskDefinition;
    taskDefinition.addVolume({ name: 'model-cache', host: { sourcePath: MODEL_CACHE_ON_HOST } });
    const container = taskDefinition.defaultContainer!;
    container.addMountPoints({ sourceVolume: 'model-cache', containerPath: MODEL_CACHE_IN_CONTAINER, readOnly: false });

    const cfnTask = taskDefinition.node.defaultChild as ecs.CfnTaskDefinition;
    cfnTask.addPropertyOverride('ContainerDefinitions.0.StopTimeout', WORKER_STOP_TIMEOUT_SECONDS);
    cfnTask.addPropertyOverride('ContainerDefinitions.0.HealthCheck', {
      Command: WORKER_HEALTH_CHECK_COMMAND,
      Interval: 30,
      Timeout: 10,
      Retries: 3,
      // Model download and session creation at start take minutes (the maximum grace ECS allows).
      StartPeriod: 300,
    });
    // A new service would otherwise start one task (and one GPU instance) at deploy time; scaling
    // sets the count from the backlog after that.
    (this.service.service.node.defaultChild as ecs.CfnService).desiredCount = 0;
  }

  /** Replaces the pattern's visible-messages policy with the backlog policy (see backlog-scaling.ts). */
  private replaceScaling(config: EnvironmentConfig): void {
    const taskCount = this.service.service.node.findChild('TaskCount') as ecs.ScalableTaskCount;
    // The pattern's policy lives on the scalable target (TaskCount/Target/QueueMessagesVisibleScaling).
    if (!taskCount.node.findChild('Target').node.tryRemoveChild('QueueMessagesVisibleScaling')) {
      throw new Error('the queue-processing pattern no longer creates QueueMessagesVisibleScaling: review replaceScaling()');
    }
    scaleOnBacklog(taskCount, {
      queue: this.service.sqsQueue,
      maxWorkers: config.gpu.maxWorkers,
      jobsPerWorker: config.gpu.jobsPerWorker,
    });
  }

  /** What the worker does, per resource; queue consumption is granted by the pattern. */
  private grantWorkerAccess(props: GpuWorkerServiceProps): void {
    const taskRole = this.service.taskDefinition.taskRole;
    // Frames and manifests written by the extraction Lambda.
    iam.Grant.addToPrincipal({
      grantee: taskRole,
      actions: ['s3:GetObject'],
      resourceArns: [props.videoBucket.arnForObjects(`${FRAMES_PREFIX}*`)],
    });
    // The answers export (index/profile=…/dt=…/<jobId>.jsonl), which the Glue table reads.
    iam.Grant.addToPrincipal({
      grantee: taskRole,
      actions: ['s3:PutObject'],
      resourceArns: [props.videoBucket.arnForObjects(`${INDEX_PREFIX}*`)],
    });
    // Job items (RUNNING → DONE/FAILED, conditional updates) and answer items (conditional puts,
    // a job's existing answers by Query on the table's own key).
    iam.Grant.addToPrincipal({
      grantee: taskRole,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
      resourceArns: [props.jobsTable.tableArn, props.answersTable.tableArn],
    });
    // Dead-letter reconciliation (container/worker/dead-letters.ts): reads the whole DLQ, then makes
    // what it read visible again; no DeleteMessage: moving messages back stays `longsight requeue-dlq`'s.
    iam.Grant.addToPrincipal({
      grantee: taskRole,
      actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility'],
      resourceArns: [props.deadLetterQueue.queueArn],
    });
    grantModelArtifactRead(taskRole, props.config.model.artifactUri, taskRole);
    // A worker marks itself protected from scale-in while it runs a job (container/worker/
    // task-protection.ts, through the ECS agent's endpoint), so lowering the task count stops idle
    // workers, never a busy one.
    this.cluster.grantTaskProtection(taskRole);
    this.acknowledgeFindings(props);
  }

  private acknowledgeFindings(props: GpuWorkerServiceProps): void {
    const stack = Stack.of(this);
    const bucketId = stack.getLogicalId(props.videoBucket.node.defaultChild as s3.CfnBucket);
    const clusterId = stack.getLogicalId(this.cluster.node.defaultChild as ecs.CfnCluster);
    Validations.of(this.service.taskDefinition.taskRole).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${FRAMES_PREFIX}*]`,
        reason: 'Frames live under frames/<jobId>/, named at run time from the job id; read-only.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${INDEX_PREFIX}*]`,
        reason: 'Export files are index/profile=<profile>/dt=<day>/<jobId>.jsonl, named at run time; PutObject only, under index/.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/<${clusterId}>/*]`,
        reason: 'Task scale-in protection applies to the calling task, whose id is known only at run time; limited to this cluster.',
      },
    );
    const executionRole = this.service.taskDefinition.executionRole;
    if (executionRole) {
      Validations.of(executionRole).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'ecr:GetAuthorizationToken has no resource-level permissions; image pulls are limited to the worker image repository.',
      });
    }
    Validations.of(this.service.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds resource names and non-secret settings only (queue URL, table names, model URI, worker config); credentials come from the task role.',
    });
  }
}
