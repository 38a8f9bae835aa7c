/**
 * One endpoint for S3, SQS and DynamoDB, as LocalStack offers (http://localhost:4566): requests
 * are routed by their X-Amz-Target header (DynamoDB_20120810.* to DynamoDB, everything else to
 * the S3/SQS server), so `--endpoint URL` can be tested against the embedded servers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startOneEndpoint(s3sqs: string, dynamodb: string): Promise<{ url: string; close(): Promise<void> }> {
  const a = new URL(s3sqs);
  const d = new URL(dynamodb);
  const server = http.createServer((req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const to = target.startsWith('DynamoDB_') ? d : a;
    const up = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
