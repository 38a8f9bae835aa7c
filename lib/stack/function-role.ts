/**
 * A Lambda function's own log group and role. The role gets only the log writes to that group, and
 * whatever the function grants it: no AWSLambdaBasicExecutionRole (which writes to any log group in
 * the account).
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export function functionRoleAndLogs(scope: Construct, o: { description: string; retentionDays: number; removalPolicy: RemovalPolicy }): { role: iam.Role; logGroup: logs.LogGroup } {
  const logGroup = new logs.LogGroup(scope, 'Logs', { retention: o.retentionDays as logs.RetentionDays, removalPolicy: o.removalPolicy });
  const role = new iam.Role(scope, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: o.description });
  logGroup.grantWrite(role);
  return { role, logGroup };
}
