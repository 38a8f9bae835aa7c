/**
 * Synthesizes environments from the real cdk.json the way `cdk synth -c env=NAME` does (same
 * context, same feature flags), into a temporary cloud assembly that the caller removes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { buildApp, BuildOptions } from '../../lib/stack/app';
import type { LongsightStack } from '../../lib/stack/longsight-stack';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export interface CdkJson {
  app: string;
  context: Record<string, unknown> & { environments: Record<string, unknown> };
}

export function readCdkJson(): CdkJson {
  return JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as CdkJson;
}

export interface Synthesized {
  app: App;
  stack: LongsightStack;
  assembly: CloudAssembly;
  template: Template;
  /** The raw template JSON, for checks across all resources. */
  json: { Resources: Record<string, { Type: string; Properties?: any; Metadata?: any }>; Outputs?: Record<string, any> };
  outdir: string;
}

export function makeApp(context: Record<string, unknown>): { app: App; outdir: string } {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-cdk-'));
  return { app: new App({ outdir, context }), outdir };
}

/** Builds and synthesizes one environment with cdk.json's context plus `extraContext`. */
export function synthEnvironment(envName: string, options: BuildOptions & { extraContext?: Record<string, unknown> } = {}): Synthesized {
  const cdkJson = readCdkJson();
  const { app, outdir } = makeApp({ ...cdkJson.context, env: envName, ...options.extraContext });
  const stack = buildApp(app, options);
  const assembly = app.synth();
  const json = assembly.getStackByName(stack.stackName).template;
  return { app, stack, assembly, template: Template.fromJSON(json), json, outdir };
}

export function removeOutdir(s: { outdir: string } | undefined): void {
  if (s) fs.rmSync(s.outdir, { recursive: true, force: true });
}

/** Resources of one type, as [logicalId, resource] pairs. */
export function resourcesOfType(s: Synthesized, type: string): [string, { Type: string; Properties?: any }][] {
  return Object.entries(s.json.Resources).filter(([, r]) => r.Type === type);
}

export function logicalIdOf(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as any);
}
