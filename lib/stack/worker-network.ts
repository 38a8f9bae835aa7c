/**
 * The GPU workers' network: a VPC with public subnets only and no NAT gateway. Workers accept no
 * inbound traffic (their security group has no ingress rule); they reach S3 and DynamoDB through
 * free gateway endpoints and SQS, ECR, ECS and CloudWatch over their public address. A NAT gateway
 * would cost more than a scaled-to-zero GPU fleet does idle and would bill every GB of the
 * multi-GB CUDA image pull.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface WorkerNetworkProps {
  /** VPC flow logs go here (under vpc-flow-logs/). */
  flowLogBucket: s3.IBucket;
}

export class WorkerNetwork extends Construct {
  readonly vpc: ec2.Vpc;

  constructor(scope: Construct, id: string, props: WorkerNetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      // GPU capacity (especially spot) differs by zone: spread over as many as the stack can name.
      maxAzs: 3,
      natGateways: 0,
      subnetConfiguration: [{ name: 'workers', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 22, mapPublicIpOnLaunch: true }],
      // Nothing uses the default security group; restricting it would add a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    this.vpc.addFlowLog('FlowLogs', {
      destination: ec2.FlowLogDestination.toS3(props.flowLogBucket, 'vpc-flow-logs/'),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
  }
}
