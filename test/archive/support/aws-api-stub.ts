/**
 * A loopback stand-in for the AWS APIs that cannot run here (Athena, Glue, Step Functions,
 * CloudFormation's DescribeStacks): it speaks their wire protocols (JSON 1.0/1.1 with X-Amz-Target;
 * CloudFormation's query protocol with an XML answer) so the real SDK clients, pointed at it with
 * AWS_ENDPOINT_URL_<SERVICE>, send real requests and parse real-shaped responses. Each test scripts
 * the answers; every request is recorded. It checks the calls, not AWS's behaviour.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubCall {
  /** "AmazonAthena.StartQueryExecution", "AWSGlue.GetTable", "AWSStepFunctions.StartExecution", "CloudFormation.DescribeStacks". */
  op: string;
  body: Record<string, unknown>;
}

/** Answers an operation: a response body, or an AWS error. */
export type StubHandler = (body: Record<string, unknown>) => unknown | Promise<unknown>;

export class StubAwsError extends Error {
  constructor(readonly type: string, message: string) {
    super(message);
  }
}

export interface AwsApiStub {
  url: string;
  calls: StubCall[];
  /** Handlers by operation (see StubCall.op). */
  on: Record<string, StubHandler>;
  /** AWS_ENDPOINT_URL_ATHENA/_GLUE/_SFN/_CLOUDFORMATION → this server. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** DescribeStacks' XML answer (query protocol) for one stack with these outputs. */
export function describeStacksXml(stackName: string, outputs: Record<string, string>): string {
  const members = Object.entries(outputs)
    .map(([k, v]) => `<member><OutputKey>${xmlEscape(k)}</OutputKey><OutputValue>${xmlEscape(v)}</OutputValue></member>`)
    .join('');
  return (
    '<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>' +
    `<StackName>${xmlEscape(stackName)}</StackName><StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/${xmlEscape(stackName)}/1</StackId>` +
    `<StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-01-01T00:00:00Z</CreationTime><Outputs>${members}</Outputs>` +
    '</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></DescribeStacksResponse>'
  );
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startAwsApiStub(): Promise<AwsApiStub> {
  const calls: StubCall[] = [];
  const on: Record<string, StubHandler> = {};
  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const target = req.headers['x-amz-target'];
    try {
      if (typeof target === 'string') {
        const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        calls.push({ op: target, body });
        const handler = on[target];
        if (!handler) throw new StubAwsError('UnknownOperationException', `the stub has no answer for ${target}`);
        const answer = await handler(body);
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(answer ?? {}));
        return;
      }
      const form = Object.fromEntries(new URLSearchParams(raw));
      const op = `CloudFormation.${form.Action}`;
      calls.push({ op, body: form });
      const handler = on[op];
      if (!handler) throw new StubAwsError('InvalidAction', `the stub has no answer for ${op}`);
      const xml = String(await handler(form));
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(xml);
    } catch (e) {
      const type = e instanceof StubAwsError ? e.type : 'InternalFailure';
      if (typeof target === 'string') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
        res.end(JSON.stringify({ __type: type, message: (e as Error).message }));
      } else {
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>${type}</Code><Message>${xmlEscape((e as Error).message)}</Message></Error><RequestId>stub</RequestId></ErrorResponse>`);
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    calls,
    on,
    env: { AWS_ENDPOINT_URL_ATHENA: url, AWS_ENDPOINT_URL_GLUE: url, AWS_ENDPOINT_URL_SFN: url, AWS_ENDPOINT_URL_CLOUDFORMATION: url },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
