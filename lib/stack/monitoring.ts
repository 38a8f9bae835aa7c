/**
 * Alarms (to one encrypted SNS topic) and one dashboard for an environment.
 *
 * Custom metrics the worker publishes (as CloudWatch Embedded Metric Format log lines, no API
 * call), namespace "Longsight", dimension Stack = <stack name> (see lib/contracts/worker-config.ts):
 *   - JobsDone      (Count)        1 per job that ended DONE
 *   - JobsFailed    (Count)        1 per job that ended FAILED
 *   - JobLatencyMs  (Milliseconds) message received → job item written DONE
 * And one the stack derives itself:
 *   - WorkerTaskFailures (Count, dimension ClusterArn) 1 per worker task that stopped with a
 *     non-zero exit code or failed to start, from ECS task state-change events.
 */
import { Duration, RemovalPolicy, Stack, ArnFormat } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, WORKER_METRICS } from '../contracts/worker-config';
import { backlogMetric } from './backlog-scaling';

export const WORKER_TASK_FAILURES_METRIC = 'WorkerTaskFailures';

export interface MonitoringProps {
  stackName: string;
  removalPolicy: RemovalPolicy;
  logRetentionDays: number;
  oldestMessageAlarmSeconds: number;
  queue: sqs.IQueue;
  deadLetterQueue: sqs.IQueue;
  extractFunction: lambda.IFunction;
  /** The extraction Lambda's dead-letter queue (S3 events it gave up on). */
  extractFailedEvents: sqs.IQueue;
  cluster: ecs.ICluster;
  service: ecs.BaseService;
  autoScalingGroup: autoscaling.AutoScalingGroup;
}

export class Monitoring extends Construct {
  readonly alarmTopic: sns.Topic;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: Record<'deadLetters' | 'oldestMessage' | 'lambdaErrors' | 'lambdaThrottles' | 'extractFailedEvents' | 'workerTaskFailures', cloudwatch.Alarm>;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const fiveMinutes = Duration.minutes(5);
    const oneMinute = Duration.minutes(1);

    // CloudWatch can publish to an encrypted topic only through a customer-managed key whose policy
    // lets it use the key (the AWS-managed SNS key does not).
    const topicKey = new kms.Key(this, 'AlarmTopicKey', {
      description: `${props.stackName} alarm notifications`,
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    topicKey.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey');
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `${props.stackName} alarms`,
      masterKey: topicKey,
      enforceSSL: true,
    });

    const workerTaskFailures = this.workerTaskFailures(props);

    const alarm = (alarmId: string, description: string, metric: cloudwatch.IMetric, threshold: number, evaluationPeriods = 1): cloudwatch.Alarm => {
      const a = new cloudwatch.Alarm(this, alarmId, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
      return a;
    };

    this.alarms = {
      deadLetters: alarm(
        'DeadLettersAlarm',
        'A job message reached the dead-letter queue (it failed maxReceiveCount times). Inspect it, fix, then `longsight requeue-dlq`.',
        props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM }),
        0,
      ),
      oldestMessage: alarm(
        'OldestMessageAlarm',
        `The oldest job has waited more than ${props.oldestMessageAlarmSeconds} s: workers are not keeping up or cannot start (GPU capacity, image, model).`,
        props.queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM }),
        props.oldestMessageAlarmSeconds,
      ),
      lambdaErrors: alarm(
        'ExtractErrorsAlarm',
        'The frame-extraction Lambda threw (transient AWS errors are retried; see its log group).',
        props.extractFunction.metricErrors({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
        0,
      ),
      lambdaThrottles: alarm(
        'ExtractThrottlesAlarm',
        'The frame-extraction Lambda was throttled at its reserved concurrency (S3 retries; raise lambda.reservedConcurrency if it persists).',
        props.extractFunction.metricThrottles({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
        0,
      ),
      extractFailedEvents: alarm(
        'ExtractFailedEventsAlarm',
        'An upload was not extracted after all Lambda retries; its S3 event waits in the extraction dead-letter queue for a replay.',
        props.extractFailedEvents.metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM }),
        0,
      ),
      workerTaskFailures: alarm(
        'WorkerTaskFailuresAlarm',
        'A GPU worker task exited non-zero or failed to start (see the worker log group and the task-failure events log group).',
        workerTaskFailures,
        0,
      ),
    };

    this.dashboard = this.buildDashboard(props, workerTaskFailures);
  }

  /**
   * ECS task state-change events for this cluster's failed tasks → an /aws/events log group →
   * a metric filter counting them. Written with the L1-backed resource policy rather than the
   * events-targets helper, which installs the policy through a custom-resource Lambda.
   */
  private workerTaskFailures(props: MonitoringProps): cloudwatch.Metric {
    const logGroup = new logs.LogGroup(this, 'WorkerTaskFailureEvents', {
      // EventBridge delivers only to log groups under /aws/events/.
      logGroupName: `/aws/events/${props.stackName}/worker-task-failures`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });
    const stack = Stack.of(this);
    const logGroupTargetArn = stack.formatArn({
      service: 'logs',
      resource: 'log-group',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      resourceName: logGroup.logGroupName,
    });
    new logs.ResourcePolicy(this, 'EventsToLogs', {
      policyStatements: [
        new iam.PolicyStatement({
          principals: [new iam.ServicePrincipal('events.amazonaws.com')],
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [logGroup.logGroupArn],
        }),
      ],
    });
    const rule = new events.Rule(this, 'WorkerTaskFailedRule', {
      description: 'GPU worker tasks that exited non-zero or failed to start',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          clusterArn: [props.cluster.clusterArn],
          lastStatus: ['STOPPED'],
          // A clean exit 0 (scale-in, SIGTERM handled, spot drain) is not a failure.
          $or: [{ stopCode: ['TaskFailedToStart'] }, { containers: { exitCode: [{ 'anything-but': 0 }] } }],
        },
      },
    });
    rule.addTarget({ bind: () => ({ arn: logGroupTargetArn }) });
    logGroup.addMetricFilter('WorkerTaskFailuresFilter', {
      filterPattern: logs.FilterPattern.exists('$.detail.lastStatus'),
      metricNamespace: METRICS_NAMESPACE,
      metricName: WORKER_TASK_FAILURES_METRIC,
      metricValue: '1',
      dimensions: { ClusterArn: '$.detail.clusterArn' },
    });
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: WORKER_TASK_FAILURES_METRIC,
      dimensionsMap: { ClusterArn: props.cluster.clusterArn },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
    });
  }

  private buildDashboard(props: MonitoringProps, workerTaskFailures: cloudwatch.IMetric): cloudwatch.Dashboard {
    const oneMinute = Duration.minutes(1);
    const fiveMinutes = Duration.minutes(5);
    const workerMetric = (metricName: string, statistic: string, label: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { Stack: props.stackName },
        statistic,
        period: fiveMinutes,
        label,
      });
    const insights = (metricName: string, label: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName,
        dimensionsMap: { ClusterName: props.cluster.clusterName, ServiceName: props.service.serviceName },
        statistic: cloudwatch.Stats.AVERAGE,
        period: oneMinute,
        label,
      });

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.stackName,
      defaultInterval: Duration.hours(6),
    });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Queue backlog',
        width: 12,
        left: [
          backlogMetric(props.queue),
          props.queue.metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM, label: 'Waiting (visible)' }),
          props.queue.metricApproximateNumberOfMessagesNotVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM, label: 'Running (in flight)' }),
          props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM, label: 'Dead letters' }),
        ],
        right: [props.queue.metricApproximateAgeOfOldestMessage({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM, label: 'Oldest job age (s)' })],
      }),
      new cloudwatch.GraphWidget({
        title: 'GPU workers running',
        width: 12,
        left: [insights('RunningTaskCount', 'Worker tasks running'), insights('DesiredTaskCount', 'Worker tasks desired')],
        right: [this.instancesInService(props.autoScalingGroup)],
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Jobs done / failed',
        width: 8,
        left: [workerMetric(WORKER_METRICS.jobsDone, cloudwatch.Stats.SUM, 'Done'), workerMetric(WORKER_METRICS.jobsFailed, cloudwatch.Stats.SUM, 'Failed')],
        right: [workerTaskFailures],
      }),
      new cloudwatch.GraphWidget({
        title: 'Job latency (ms)',
        width: 8,
        left: [
          workerMetric(WORKER_METRICS.jobLatencyMs, cloudwatch.Stats.percentile(50), 'p50'),
          workerMetric(WORKER_METRICS.jobLatencyMs, cloudwatch.Stats.percentile(90), 'p90'),
          workerMetric(WORKER_METRICS.jobLatencyMs, cloudwatch.Stats.MAXIMUM, 'max'),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Frame extraction (Lambda)',
        width: 8,
        left: [
          props.extractFunction.metricInvocations({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
          props.extractFunction.metricErrors({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
          props.extractFunction.metricThrottles({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
        ],
        right: [props.extractFunction.metricDuration({ period: fiveMinutes, statistic: cloudwatch.Stats.percentile(90) })],
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        width: 24,
        alarms: Object.values(this.alarms),
      }),
    );
    return dashboard;
  }

  private instancesInService(asg: autoscaling.AutoScalingGroup): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/AutoScaling',
      metricName: 'GroupInServiceInstances',
      dimensionsMap: { AutoScalingGroupName: asg.autoScalingGroupName },
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(1),
      label: 'GPU instances in service',
    });
  }
}
