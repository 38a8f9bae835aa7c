/**
 * CloudWatch metrics as Embedded Metric Format log lines (one JSON object per line on stdout): the
 * awslogs driver ships them and CloudWatch extracts JobsDone, JobsFailed and JobLatencyMs in the
 * "Longsight" namespace without a PutMetricData call from the worker.
 */
export type MetricUnit = 'Count' | 'Milliseconds';

export interface Metrics {
  emit(values: Record<string, { value: number; unit: MetricUnit }>, properties?: Record<string, unknown>): void;
}

export function emfRecord(
  namespace: string,
  dimensions: Record<string, string>,
  values: Record<string, { value: number; unit: MetricUnit }>,
  properties: Record<string, unknown> = {},
  now = Date.now(),
): Record<string, unknown> {
  const record: Record<string, unknown> = {
    ...properties,
    ...dimensions,
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          // One dimension set: the configured dimensions (none = metrics on the namespace alone).
          Dimensions: [Object.keys(dimensions)],
          Metrics: Object.entries(values).map(([Name, v]) => ({ Name, Unit: v.unit })),
        },
      ],
    },
  };
  for (const [name, v] of Object.entries(values)) record[name] = v.value;
  return record;
}

export function createEmfMetrics(
  namespace: string,
  dimensions: Record<string, string>,
  enabled: boolean,
  sink: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Metrics {
  return {
    emit(values, properties) {
      if (!enabled) return;
      sink(JSON.stringify(emfRecord(namespace, dimensions, values, properties)));
    },
  };
}
