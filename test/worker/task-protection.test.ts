/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * ECS task scale-in protection against a loopback server that speaks the ECS agent's endpoint
 * (PUT $ECS_AGENT_URI/task-protection/v1/state): the worker protects itself when a job starts,
 * renews on the heartbeat with an expiry bounded by the lease, clears it when idle, and goes on
 * with its jobs when the agent refuses.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { provisionLongsight } from '../../container/local/embedded-aws';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import type { AnswerEngine } from '../../container/runtime/engine';
import { protectionMinutes } from '../../container/worker/task-protection';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { inProcessWorker, slowed, waitFor, waitStatus } from './support/harness';
import { seedJob } from './support/jobs';
import { tinyModelDir } from './support/tiny-model';

jest.setTimeout(360_000);

interface AgentCall {
  at: number;
  method: string;
  path: string;
  body: { ProtectionEnabled?: boolean; ExpiresInMinutes?: number };
}

/** The agent's endpoint: records each call and answers as the agent does (`protection`, or `failure` when told to refuse). */
async function startAgent(): Promise<{ uri: string; calls: AgentCall[]; refuse: boolean; close(): Promise<void> }> {
  const agent = { uri: '', calls: [] as AgentCall[], refuse: false, close: async (): Promise<void> => undefined };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : {};
      agent.calls.push({ at: Date.now(), method: req.method!, path: req.url!, body });
      const payload = agent.refuse
        ? { failure: { Arn: 'arn:aws:ecs:us-east-1:111122223333:task/c/abc', Reason: 'TASK_NOT_VALID', Detail: 'The task is not part of a service' } }
        : { protection: { ExpirationDate: new Date(Date.now() + (body.ExpiresInMinutes ?? 0) * 60_000).toISOString(), ProtectionEnabled: body.ProtectionEnabled, TaskArn: 'arn:aws:ecs:us-east-1:111122223333:task/c/abc' } };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  agent.uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/abc-123`;
  agent.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return agent;
}

let local: LocalAws;
let engine: AnswerEngine;

beforeAll(async () => {
  local = await startLocalAws({ visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  engine = await createOnnxEngine({ modelDir: await tinyModelDir(), executionProvider: 'cpu', threads: 1 });
});
afterAll(async () => {
  await engine?.close();
  await local?.stop();
});

test('protected while a job runs (renewed on the heartbeat, expiry bounded by the lease), cleared when idle', async () => {
  const r = await provisionLongsight(local.clients, { queue: 'protection-1' }, { visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  const agent = await startAgent();
  const w = inProcessWorker(local.clients, r, slowed(engine, 4000), {}, 'protected', { ecsAgentUri: agent.uri });
  try {
    await new Promise((res) => setTimeout(res, 1500));
    expect(agent.calls).toEqual([]); // idle: never protected
    const j = await seedJob(local.clients, r);
    await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000);
    await waitFor('protection cleared', async () => agent.calls.some((c) => c.body.ProtectionEnabled === false));
    for (const c of agent.calls) {
      expect(c.method).toBe('PUT');
      expect(c.path).toBe('/api/abc-123/task-protection/v1/state');
    }
    const on = agent.calls.filter((c) => c.body.ProtectionEnabled === true);
    // The first when the job started, then one per heartbeat (1 s) while it ran (held 4 s at least;
    // a busy machine may delay a tick).
    expect(on.length).toBeGreaterThanOrEqual(2);
    // Lease (heartbeat 1 s + visibility 4 s) / 2 = 2.5 s: protection lasts the 1 minute ECS allows at least.
    expect(new Set(on.map((c) => c.body.ExpiresInMinutes))).toEqual(new Set([1]));
    const last = agent.calls[agent.calls.length - 1];
    expect(last.body).toEqual({ ProtectionEnabled: false });
    expect(agent.calls.filter((c) => c.body.ProtectionEnabled === false)).toHaveLength(1);
    expect(last.at).toBeGreaterThanOrEqual(on[on.length - 1].at);
  } finally {
    await w.stop();
    await agent.close();
  }
  expect(protectionMinutes(200_000)).toBe(4); // the stack's default lease (300 s visibility): 4 minutes
  expect(protectionMinutes(10 * 86_400_000)).toBe(2880);
});

test('an agent that refuses (a task outside a service): logged, the job still finishes', async () => {
  const r = await provisionLongsight(local.clients, { queue: 'protection-2' }, { visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  const agent = await startAgent();
  agent.refuse = true;
  const w = inProcessWorker(local.clients, r, engine, {}, 'refused', { ecsAgentUri: agent.uri });
  try {
    const j = await seedJob(local.clients, r);
    expect((await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000)).status).toBe('DONE');
    await waitFor('the clear attempted', async () => agent.calls.some((c) => c.body.ProtectionEnabled === false));
  } finally {
    await w.stop();
    await agent.close();
  }
});
