/**
 * A fault-injecting HTTP proxy in front of a real server that speaks an AWS JSON protocol (dynalite
 * for DynamoDB, fauxqs for SQS): passes requests through, except that a rule can answer chosen
 * requests (by X-Amz-Target and body) with DynamoDB's ThrottlingException or
 * ConditionalCheckFailedException (HTTP 400, the JSON error bodies DynamoDB sends), or make the
 * "server" unavailable (sockets destroyed, as when the endpoint drops connections).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  target: string; // e.g. DynamoDB_20120810.UpdateItem
  body: string;
}

export type Verdict = 'pass' | 'throttle' | 'condition-fail' | 'reject-content' | 'drop';

export interface FaultProxy {
  url: string;
  /** Decides each request's fate; default: pass. */
  rule: (r: ProxiedRequest) => Verdict;
  /** Rewrites a passed request's body (e.g. a queue URL naming the proxy back to the server's). */
  rewrite: (body: string) => string;
  counts: Record<Verdict, number>;
  close(): Promise<void>;
}

export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const proxy: FaultProxy = { url: '', rule: () => 'pass', rewrite: (b) => b, counts: { pass: 0, throttle: 0, 'condition-fail': 0, 'reject-content': 0, drop: 0 }, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const verdict = proxy.rule({ target: String(req.headers['x-amz-target'] ?? ''), body: body.toString('utf8') });
      proxy.counts[verdict]++;
      if (verdict === 'drop') {
        req.socket.destroy();
        return;
      }
      if (verdict === 'throttle' || verdict === 'condition-fail' || verdict === 'reject-content') {
        const payload = JSON.stringify(
          verdict === 'throttle'
            ? { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' }
            : verdict === 'condition-fail'
              ? { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' }
              : // What SQS answers a SendMessage whose body has characters it does not allow.
                { __type: 'com.amazonaws.sqs#InvalidMessageContents', message: 'Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF' },
        );
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'FAULT', 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
        return;
      }
      const forwarded = Buffer.from(proxy.rewrite(body.toString('utf8')), 'utf8');
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(forwarded.length) } },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 500, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on('error', () => req.socket.destroy());
      up.end(forwarded);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
