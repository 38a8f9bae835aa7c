/**
 * A Lambda layer with the npm packages the handler needs that esbuild cannot bundle: native
 * add-ons (sharp, whose libvips binary is loaded from a platform package at run time). They are
 * copied from node_modules for linux-x64 (Lambda's platform here) to nodejs/node_modules/, which
 * the Node.js runtime puts on its module path; the function's bundle marks them external.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { hostBundledLayer } from './host-bundled-layer';
import { REPO_ROOT } from './paths';

/** Packages the layer provides (with their production dependency closure). */
export const LAYER_NODE_MODULES = ['sharp'];
/** Optional platform packages are taken for this platform only. */
const PLATFORM = /-linux-x64$/;

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackage(name: string): { dir: string; json: PackageJson } | undefined {
  const dir = path.join(REPO_ROOT, 'node_modules', name);
  const file = path.join(dir, 'package.json');
  if (!fs.existsSync(file)) return undefined;
  return { dir, json: JSON.parse(fs.readFileSync(file, 'utf8')) as PackageJson };
}

/**
 * The packages to copy: the roots, their dependencies, and their linux-x64 optional dependencies,
 * transitively. A missing linux-x64 package (npm installs them only on that platform) is an error
 * that says how to get it.
 */
export function layerPackageClosure(roots: readonly string[] = LAYER_NODE_MODULES): { name: string; version: string; dir: string }[] {
  const seen = new Map<string, { name: string; version: string; dir: string }>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const pkg = readPackage(name);
    if (!pkg) {
      throw new Error(
        `native-modules layer: ${name} is not installed in node_modules (npm installs linux-x64 binaries only on that platform). ` +
          `On another platform run: npm install --no-save --force --os=linux --cpu=x64 ${roots.join(' ')}`,
      );
    }
    seen.set(name, { name, version: pkg.json.version, dir: pkg.dir });
    for (const dep of Object.keys(pkg.json.dependencies ?? {})) visit(dep);
    for (const dep of Object.keys(pkg.json.optionalDependencies ?? {})) if (PLATFORM.test(dep)) visit(dep);
  };
  for (const root of roots) visit(root);
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Copies the closure to <outputDir>/nodejs/node_modules/<name>. */
export function bundleNativeModulesLayer(outputDir: string): void {
  for (const pkg of layerPackageClosure()) {
    fs.cpSync(pkg.dir, path.join(outputDir, 'nodejs', 'node_modules', pkg.name), { recursive: true, dereference: true });
  }
}

export class NativeModulesLayer extends Construct {
  readonly layer: lambda.LayerVersion;
  /** What the function's bundle must leave external (resolved from this layer at run time). */
  readonly externalModules: string[] = [...LAYER_NODE_MODULES];

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const fingerprint = layerPackageClosure()
      .map((p) => `${p.name}@${p.version}`)
      .join(',');
    this.layer = hostBundledLayer(this, 'Layer', {
      description: `Native Node.js modules for linux-x64: ${LAYER_NODE_MODULES.join(', ')}`,
      sourceDir: path.join(REPO_ROOT, 'node_modules', LAYER_NODE_MODULES[0]),
      // Versions identify the content: no hashing of ~20 MB of binaries on every synth.
      assetHash: `native-modules-layer-v1:${fingerprint}`,
      bundle: bundleNativeModulesLayer,
    });
  }
}
