/**
 * A loopback Hugging Face Hub serving model repositories from folders: the routes the Hub's JS
 * client (@huggingface/hub) calls for `longsight model pull`, as the real Hub answers them:
 *
 *   GET /api/models/<org>/<name>/revision/<rev>?expand=…   model info with the commit `sha`
 *   GET /api/models/<org>/<name>/tree/<rev>?recursive=…     files: path, size, git `oid`, `lfs` {oid = sha256, size}
 *   GET /<org>/<name>/resolve/<rev>/<path>                   small files: the bytes (Range, ETag = git oid);
 *                                                            LFS files: 302 to /cdn/<sha256> with X-Linked-Etag / X-Linked-Size
 *   GET /cdn/<sha256>                                        LFS bytes (Range → 206 + Content-Range, ETag = sha256)
 *
 * Unknown repositories answer 404 with X-Error-Code RepoNotFound (401 for a private one without
 * the token), as the Hub does. Faults for tests: a file cut off after N bytes (the connection
 * dropped mid-body), a file served with one byte flipped, a token required. Every request is
 * logged (method, path, Range, Authorization).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';

export interface HubRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export interface HubRepo {
  commit: string;
  files: Map<string, Buffer>;
  /** Paths stored with LFS (sha256 listed): default *.safetensors and files over 1 MB. */
  lfs: Set<string>;
  token?: string;
}

export interface HubFaults {
  /** Cut the body of `path` after `afterBytes`, for the next `times` body requests (default 1). */
  truncate?: { path: string; afterBytes: number; times?: number };
  /** Serve `path` with one byte changed (its listed hash stays the original's). */
  corrupt?: string;
}

export interface LoopbackHub {
  url: string;
  requests: HubRequest[];
  faults: HubFaults;
  addRepo(name: string, dir: string, opts?: { token?: string; commit?: string }): HubRepo;
  close(): Promise<void>;
}

const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** `bytes=a-b` / `bytes=a-` → [start, end] inclusive, or undefined for no (or an unsatisfiable) range. */
function parseRange(h: string | undefined, size: number): [number, number] | undefined {
  const m = h ? /^bytes=(\d+)-(\d*)$/.exec(h) : null;
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  return start <= end ? [start, end] : undefined;
}

export async function startLoopbackHub(): Promise<LoopbackHub> {
  const repos = new Map<string, HubRepo>();
  const requests: HubRequest[] = [];
  const faults: HubFaults = {};

  const serveBytes = (req: IncomingMessage, res: ServerResponse, path: string, data: Buffer, etag: string, extra: Record<string, string> = {}) => {
    const body = faults.corrupt === path ? Buffer.from(data) : data;
    if (faults.corrupt === path) body[body.length >> 1] ^= 0xff;
    const range = parseRange(req.headers.range, body.length);
    const [start, end] = range ?? [0, body.length - 1];
    const slice = body.subarray(start, end + 1);
    const headers = { 'Content-Type': 'application/octet-stream', ETag: `"${etag}"`, 'Accept-Ranges': 'bytes', 'Content-Length': String(slice.length), ...extra };
    res.writeHead(range ? 206 : 200, range ? { ...headers, 'Content-Range': `bytes ${start}-${end}/${body.length}` } : headers);
    const cut = faults.truncate;
    if (cut && cut.path === path && slice.length > 1 && (cut.times ?? 1) > 0) {
      cut.times = (cut.times ?? 1) - 1;
      // Headers promised the whole length: send part of it, then drop the connection.
      res.write(slice.subarray(0, Math.max(0, cut.afterBytes - start)), () => res.destroy());
      return;
    }
    res.end(slice);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, range: req.headers.range, authorization: req.headers.authorization });
    const denied = (repo: HubRepo) => repo.token !== undefined && req.headers.authorization !== `Bearer ${repo.token}`;
    const notFound = () => json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    const unauthorized = () => json(res, 401, { error: 'Invalid credentials in Authorization header' }, { 'X-Error-Code': 'RepoNotFound' });
    const revisionOk = (repo: HubRepo, rev: string) => rev === 'main' || rev === repo.commit;

    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (m) {
      const repo = repos.get(m[1]);
      if (!repo) return notFound();
      if (denied(repo)) return unauthorized();
      if (!revisionOk(repo, m[2])) return json(res, 404, { error: `Invalid rev id: ${m[2]}` }, { 'X-Error-Code': 'RevisionNotFound' });
      return json(res, 200, { _id: `id-${m[1]}`, id: m[1], sha: repo.commit, private: Boolean(repo.token), gated: false, downloads: 0, likes: 0, lastModified: '2026-01-01T00:00:00.000Z', pipeline_tag: 'image-text-to-text' });
    }
    m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(path);
    if (m) {
      const repo = repos.get(m[1]);
      if (!repo) return notFound();
      if (denied(repo)) return unauthorized();
      if (!revisionOk(repo, m[2])) return json(res, 404, { error: `Invalid rev id: ${m[2]}` }, { 'X-Error-Code': 'RevisionNotFound' });
      const entries = [...repo.files].map(([p, b]) =>
        repo.lfs.has(p) ? { type: 'file', oid: gitOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(b)}\nsize ${b.length}\n`)), size: b.length, path: p, lfs: { oid: sha256(b), size: b.length, pointerSize: 134 } } : { type: 'file', oid: gitOid(b), size: b.length, path: p },
      );
      return json(res, 200, entries);
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      const repo = repos.get(m[1]);
      if (!repo) return notFound();
      if (denied(repo)) return unauthorized();
      const data = revisionOk(repo, m[2]) ? repo.files.get(m[3]) : undefined;
      if (!data) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      if (repo.lfs.has(m[3])) {
        res.writeHead(302, { Location: `/cdn/${sha256(data)}`, 'X-Linked-Etag': `"${sha256(data)}"`, 'X-Linked-Size': String(data.length) });
        return res.end();
      }
      return serveBytes(req, res, m[3], data, gitOid(data));
    }
    m = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (m) {
      for (const repo of repos.values()) {
        for (const [p, b] of repo.files) if (repo.lfs.has(p) && sha256(b) === m[1]) return serveBytes(req, res, p, b, m[1]);
      }
      return json(res, 404, { error: 'no such object' });
    }
    json(res, 404, { error: `no route ${path}` });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faults,
    addRepo(name, dir, opts = {}) {
      const files = new Map<string, Buffer>();
      for (const f of readdirSync(dir).sort()) if (statSync(join(dir, f)).isFile()) files.set(f, readFileSync(join(dir, f)));
      files.set('README.md', Buffer.from(`# ${name}\n`));
      const lfs = new Set([...files].filter(([p, b]) => p.endsWith('.safetensors') || b.length > 1024 * 1024).map(([p]) => p));
      const commit = opts.commit ?? createHash('sha1').update(name).update([...files.values()].map(sha256).join()).digest('hex');
      const repo: HubRepo = { commit, files, lfs, token: opts.token };
      repos.set(name, repo);
      return repo;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
