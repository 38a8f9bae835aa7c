/**
 * Task scaling on the job backlog: visible + in-flight messages. The queue-processing pattern's own
 * policy reads visible messages only, and a queue whose every message is being worked on shows
 * zero visible: that policy would then stop busy workers one by one. The backlog counts a job
 * until its worker deletes the message, so desired tasks = ceil(backlog / jobs per worker),
 * clamped to [0, max], and the fleet reaches zero only when the queue is truly empty.
 */
import { Duration } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as sqs from 'aws-cdk-lib/aws-sqs';

/** CDK allows at most 40 intervals per step policy: one for "empty", one gap, 38 for counts. */
export const MAX_COUNT_STEPS = 38;

/** The task counts the policy can set: every count up to max, or 38 evenly spaced ones ending at max. */
export function workerCountSteps(maxWorkers: number): number[] {
  if (maxWorkers <= MAX_COUNT_STEPS) return Array.from({ length: maxWorkers }, (_, i) => i + 1);
  const counts = new Set<number>();
  for (let k = 1; k <= MAX_COUNT_STEPS; k++) counts.add(Math.ceil((k * maxWorkers) / MAX_COUNT_STEPS));
  return [...counts];
}

/**
 * Exact-capacity steps over the backlog b: b = 0 → 0 tasks; b in [(n'·j)+1, n·j] → n tasks, where
 * n' is the previous count; anything above the last bound → max. The gap (0, 1) never occurs (the
 * backlog is an integer) and splits the policy into a scale-to-zero alarm (b ≤ 0) and a sizing
 * alarm (b ≥ 1) that re-fires every period while jobs remain, following the backlog both ways.
 */
export function backlogScalingSteps(maxWorkers: number, jobsPerWorker: number): appscaling.ScalingInterval[] {
  const steps: appscaling.ScalingInterval[] = [{ upper: 0, change: 0 }];
  let previous = 0;
  for (const n of workerCountSteps(maxWorkers)) {
    const lower = previous * jobsPerWorker + 1;
    steps.push(n === maxWorkers ? { lower, change: n } : { lower, upper: n * jobsPerWorker + 1, change: n });
    previous = n;
  }
  return steps;
}

/** The backlog as one metric: visible + in-flight messages of the job queue, per minute. */
export function backlogMetric(queue: sqs.IQueue): cloudwatch.MathExpression {
  const period = Duration.minutes(1);
  return new cloudwatch.MathExpression({
    expression: 'visible + inflight',
    usingMetrics: {
      visible: queue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
      inflight: queue.metricApproximateNumberOfMessagesNotVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
    },
    period,
    label: 'Job backlog (visible + in flight)',
  });
}

export interface BacklogScalingProps {
  queue: sqs.IQueue;
  maxWorkers: number;
  jobsPerWorker: number;
}

export function scaleOnBacklog(target: ecs.ScalableTaskCount, props: BacklogScalingProps): void {
  target.scaleOnMetric('BacklogScaling', {
    metric: backlogMetric(props.queue),
    adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
    scalingSteps: backlogScalingSteps(props.maxWorkers, props.jobsPerWorker),
    metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
    evaluationPeriods: 1,
    cooldown: Duration.minutes(1),
  });
}
