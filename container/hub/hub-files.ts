/**
 * A model repository on the Hugging Face Hub, as `longsight model pull` reads it, through the
 * Hub's own JS client (@huggingface/hub): the revision resolved to its commit (so a pull is
 * pinned and a second pull of the same commit is a no-op), and the files a LLaVA-OneVision
 * checkpoint needs, with their sizes and hashes (an LFS file's sha256, a small file's git blob id).
 *
 * HF_ENDPOINT (a mirror, or the tests' loopback Hub) and HF_TOKEN (private or gated repositories)
 * are honoured as the Hub's Python client honours them.
 */
import { HubApiError, listFiles, modelInfo } from '@huggingface/hub';

export interface HubAccess {
  hubUrl: string;
  accessToken?: string;
  fetch?: typeof fetch;
}

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export function hubAccess(env: NodeJS.ProcessEnv = process.env): HubAccess {
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  if (token && !token.startsWith('hf_')) throw new PullError('HF_TOKEN must be a Hugging Face access token (it starts with "hf_"; https://huggingface.co/settings/tokens)');
  return { hubUrl: (env.HF_ENDPOINT || DEFAULT_HUB_URL).replace(/\/+$/, ''), accessToken: token };
}

/** A pull that cannot go on, with a message that says why and what to do. */
export class PullError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PullError';
  }
}

export interface RepoFile {
  path: string;
  size: number;
  /** LFS files: the sha256 of the content. */
  sha256?: string;
  /** Other files: the git blob id (sha1 of "blob <size>\0" + content). */
  gitOid?: string;
}

const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function checkRepoName(repo: string): void {
  if (!REPO_NAME.test(repo)) throw new PullError(`"${repo}" is not a Hub model repository name: expected <org>/<name>, e.g. llava-hf/llava-onevision-qwen2-0.5b-ov-hf`);
}

function explain(e: unknown, what: string, repo: string, access: HubAccess): never {
  if (e instanceof HubApiError) {
    if (e.statusCode === 401 || e.statusCode === 403 || e.statusCode === 404) {
      const auth = access.accessToken ? 'HF_TOKEN is set: does it have access?' : 'if it is private or gated, set HF_TOKEN to a token with access';
      throw new PullError(`${what}: repository ${repo} not found on ${access.hubUrl} (HTTP ${e.statusCode}; check the name; ${auth})`, { cause: e });
    }
    throw new PullError(`${what}: the Hub at ${access.hubUrl} answered HTTP ${e.statusCode}: ${e.message}`, { cause: e });
  }
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  throw new PullError(`${what}: cannot reach the Hub at ${access.hubUrl} (${cause?.code ?? cause?.message ?? (e as Error).message})${access.hubUrl === DEFAULT_HUB_URL ? '' : ' — HF_ENDPOINT points there'}`, { cause: e });
}

/** The commit a branch, tag or commit id names. */
export async function resolveCommit(repo: string, revision: string, access: HubAccess): Promise<string> {
  try {
    const info = await modelInfo({ name: repo, revision, hubUrl: access.hubUrl, accessToken: access.accessToken, fetch: access.fetch, additionalFields: ['sha'] });
    const sha = (info as { sha?: string }).sha;
    if (!sha || !/^[0-9a-f]{40}$/.test(sha)) throw new PullError(`the Hub at ${access.hubUrl} gave no commit for ${repo}@${revision}`);
    return sha;
  } catch (e) {
    if (e instanceof PullError) throw e;
    explain(e, `cannot resolve ${repo}@${revision}`, repo, access);
  }
}

/** Every file at the commit (top level and below), with sizes and hashes. */
export async function listRepoFiles(repo: string, commit: string, access: HubAccess): Promise<RepoFile[]> {
  const out: RepoFile[] = [];
  try {
    for await (const f of listFiles({ repo: { type: 'model', name: repo }, revision: commit, recursive: true, hubUrl: access.hubUrl, accessToken: access.accessToken, fetch: access.fetch })) {
      if (f.type !== 'file') continue;
      out.push({ path: f.path, size: f.lfs?.size ?? f.size, ...(f.lfs ? { sha256: f.lfs.oid } : { gitOid: f.oid }) });
    }
  } catch (e) {
    explain(e, `cannot list the files of ${repo}@${commit.slice(0, 7)}`, repo, access);
  }
  return out;
}

/** What the converter reads: configs, tokenizer, processor files and safetensors weights, at the top level. */
const WANTED = /^[^/]+\.(json|safetensors|txt|jinja)$/;

/** The checkpoint's files to download; throws when the repository is not a safetensors LLaVA-OneVision checkpoint. */
export function checkpointFiles(repo: string, commit: string, files: RepoFile[]): RepoFile[] {
  const wanted = files.filter((f) => WANTED.test(f.path));
  const at = `${repo}@${commit.slice(0, 7)}`;
  if (!wanted.some((f) => f.path === 'config.json')) throw new PullError(`${at} has no config.json: it is not a checkpoint in the Hugging Face layout (LLaVA-OneVision: llava-hf/llava-onevision-qwen2-*-ov-hf)`);
  if (!wanted.some((f) => f.path.endsWith('.safetensors'))) {
    const other = files.filter((f) => /\.(bin|pt|pth|ckpt|gguf)$/.test(f.path)).map((f) => f.path);
    throw new PullError(`${at} has no .safetensors weights${other.length ? ` (only ${other.slice(0, 3).join(', ')}${other.length > 3 ? ', …' : ''})` : ''}: the converter reads safetensors only`);
  }
  for (const f of wanted) {
    if (f.path.endsWith('.safetensors') && !f.sha256) throw new PullError(`${at}: ${f.path} is not stored with Git LFS, so the Hub gives no sha256 to verify it against`);
  }
  return wanted;
}
