/**
 * The backfill: a Step Functions Distributed Map that iterates over what is already in the video
 * bucket and hands each video to the extraction function as the S3 ObjectCreated record S3 would
 * have sent for it (`longsight index s3://… --stack` starts it; the run goes on without the CLI).
 *
 *   Source? ── "prefix" ─▶ BucketListing: ItemReader s3:listObjectsV2 over the bucket (Prefix from the input)
 *          └── "list" ───▶ SelectedObjects: ItemReader s3:getObject of a JSON list the CLI wrote
 *                          (a --limit or an S3 Inventory selection) in the results bucket
 *   each item: IsVideo? ── yes ─▶ Extract (lambda:invoke, retried) ─ outputs the handler's outcomes
 *                       └─ no ──▶ NotAVideo (outputs an "ignored" outcome)
 *
 * Each map runs MaxConcurrency child executions (index.maxConcurrency, at most the function's
 * reserved concurrency) and tolerates index.toleratedFailurePercentage failed items; child outputs
 * are written as JSON lines to the results bucket under backfill/<execution name>/, which the CLI
 * reads for its summary (indexed, skipped, failed with reasons). Standard child executions: an
 * extraction may take the function's full 15 minutes, beyond an Express execution's 5.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { FRAMES_PREFIX, INDEX_PREFIX, VIDEO_SUFFIXES } from '../contracts/s3-layout';
import { BACKFILL_RESULTS_PREFIX } from '../contracts/archive-outputs';

/** The event name backfill records carry (the handler takes any ObjectCreated:*). */
export const BACKFILL_EVENT_NAME = 'ObjectCreated:Backfill';

/** The regular expression the IsVideo choice applies to a key (JSONata regexes are JavaScript's). */
export const VIDEO_KEY_PATTERN = `\\.(${VIDEO_SUFFIXES.map((s) => s.slice(1)).join('|')})$`;

/** A video suffix in any case, not under Longsight's own prefixes: what the extraction would take. */
export const IS_VIDEO_CONDITION =
  `{% $contains($states.input.Key, /${VIDEO_KEY_PATTERN}/i) and $not($contains($states.input.Key, /\\.questions\\.json$/i))` +
  ` and $substring($states.input.Key, 0, ${FRAMES_PREFIX.length}) != '${FRAMES_PREFIX}' and $substring($states.input.Key, 0, ${INDEX_PREFIX.length}) != '${INDEX_PREFIX}' %}`;

export interface BackfillStateMachineProps {
  videoBucket: s3.IBucket;
  resultsBucket: s3.IBucket;
  extractFunction: lambda.IFunction;
  maxConcurrency: number;
  toleratedFailurePercentage: number;
  removalPolicy: RemovalPolicy;
  logRetentionDays: number;
}

export class BackfillStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: BackfillStateMachineProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetentionDays as logs.RetentionDays, removalPolicy: props.removalPolicy });

    const listing = this.map('BucketListing', props, new sfn.S3ObjectsItemReader({ bucket: props.videoBucket, prefix: '{% $states.input.prefix %}' }));
    const selected = this.map('SelectedObjects', props, new sfn.S3JsonItemReader({ bucket: props.resultsBucket, key: '{% $states.input.itemsKey %}' }));
    const source = sfn.Choice.jsonata(this, 'Source', { comment: 'A JSON list written by the CLI, or the bucket listing under a prefix' })
      .when(sfn.Condition.jsonata("{% $states.input.source = 'list' %}"), selected)
      .otherwise(listing);

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: 'Longsight backfill: hand every video already in the bucket to the extraction function',
      queryLanguage: sfn.QueryLanguage.JSONATA,
      definitionBody: sfn.DefinitionBody.fromChainable(source),
      stateMachineType: sfn.StateMachineType.STANDARD,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    this.acknowledgeFindings(props);
  }

  /** One Distributed Map over `reader`'s items, with the shared item processor. */
  private map(id: string, props: BackfillStateMachineProps, itemReader: sfn.IItemReader): sfn.DistributedMap {
    return sfn.DistributedMap.jsonata(this, id, {
      comment: `Each object ${id === 'BucketListing' ? 'listed under the prefix' : 'in the selected list'} to the extraction function`,
      itemReader,
      maxConcurrency: props.maxConcurrency,
      toleratedFailurePercentage: props.toleratedFailurePercentage,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      label: id,
      resultWriterV2: new sfn.ResultWriterV2({
        bucket: props.resultsBucket,
        prefix: `{% '${BACKFILL_RESULTS_PREFIX}' & $states.context.Execution.Name %}`,
        writerConfig: new sfn.WriterConfig({ outputType: sfn.OutputType.JSONL, transformation: sfn.Transformation.FLATTEN }),
      }),
    }).itemProcessor(this.processor(id, props));
  }

  /** Per item (`{Key, Etag, Size}` as s3:listObjectsV2 gives it): a video goes to the function, anything else is reported ignored. */
  private processor(prefix: string, props: BackfillStateMachineProps): sfn.IChainable {
    const extract = tasks.LambdaInvoke.jsonata(this, `${prefix}Extract`, {
      comment: 'The S3 ObjectCreated record for the object (key URL-encoded as S3 sends it; the function reads the current version)',
      lambdaFunction: props.extractFunction,
      payload: sfn.TaskInput.fromObject({
        Records: [
          {
            eventVersion: '2.1',
            eventSource: 'aws:s3',
            eventName: BACKFILL_EVENT_NAME,
            eventTime: '{% $states.context.State.EnteredTime %}',
            s3: {
              s3SchemaVersion: '1.0',
              bucket: { name: props.videoBucket.bucketName },
              object: { key: '{% $encodeUrlComponent($states.input.Key) %}', size: '{% $states.input.Size %}', eTag: '{% $states.input.Etag %}' },
            },
          },
        ],
      }),
      // The handler's outcomes for the record ([{outcome, key, jobId, reason|why}]): flattened into the results.
      outputs: '{% $states.result.Payload.results %}',
      retryOnServiceExceptions: true,
    });
    // Throttled by the function's reserved concurrency: wait and try again, longer.
    extract.addRetry({ errors: ['Lambda.TooManyRequestsException'], interval: Duration.seconds(5), maxAttempts: 8, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
    // A transient extraction failure (the handler throws): retried as S3's asynchronous invocations are, twice.
    extract.addRetry({ errors: ['States.ALL'], interval: Duration.seconds(10), maxAttempts: 2, backoffRate: 3 });
    const skip = sfn.Pass.jsonata(this, `${prefix}NotAVideo`, {
      outputs: [{ outcome: 'ignored', bucket: props.videoBucket.bucketName, key: '{% $states.input.Key %}', why: 'not a video suffix (or under frames/ or index/)' }],
    });
    return sfn.Choice.jsonata(this, `${prefix}IsVideo`).when(sfn.Condition.jsonata(IS_VIDEO_CONDITION), extract).otherwise(skip);
  }

  private acknowledgeFindings(props: BackfillStateMachineProps): void {
    const stack = Stack.of(this);
    const fnId = stack.getLogicalId(props.extractFunction.node.defaultChild as lambda.CfnFunction);
    const resultsId = stack.getLogicalId(props.resultsBucket.node.defaultChild as s3.CfnBucket);
    const role = this.stateMachine.role;
    Validations.of(role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::<${fnId}.Arn>:*]`,
        reason: "lambda:InvokeFunction on the extraction function's versions and aliases (CDK's grant for a function task); that one function only.",
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<${resultsId}>/*]`,
        reason: 'The Distributed Map writes its results (backfill/<execution>/) and reads the CLI-selected item lists in the results bucket only.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray trace segments and CloudWatch Logs delivery setup have no resource-level permissions (CDK adds them for tracing and logging).',
      },
    );
    // The Distributed Map starts, describes and stops its own child executions, named at run time.
    const executions = `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${stack.getLogicalId(this.stateMachine.node.defaultChild as sfn.CfnStateMachine)}"}]}]}`;
    const mapPolicy = this.stateMachine.node.tryFindChild('DistributedMapPolicy');
    if (mapPolicy) {
      Validations.of(mapPolicy).acknowledge(
        { id: `AwsSolutions-IAM5[Resource::${executions}:*]`, reason: "The backfill's own executions (named by the CLI at start): the map run describes and stops them, nothing else's." },
        { id: `AwsSolutions-IAM5[Resource::${executions}/BucketListing:*]`, reason: 'Child executions of the BucketListing map run, named by Step Functions at run time; this state machine only.' },
        { id: `AwsSolutions-IAM5[Resource::${executions}/SelectedObjects:*]`, reason: 'Child executions of the SelectedObjects map run, named by Step Functions at run time; this state machine only.' },
      );
    }
  }
}
