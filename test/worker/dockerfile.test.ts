/**
 * What can be checked of the worker image without a Docker engine: the Dockerfile's base image,
 * Node version, non-root user, entrypoint and health check (matching the stack's), the production
 * install with onnxruntime's CUDA 12 binaries, and that every module the worker loads at run time
 * (imports walked from container/worker/main.ts, type-only imports excluded) resolves from the
 * production dependency set in package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(__dirname, '../..');
const dockerfile = readFileSync(join(ROOT, 'container/Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** Instructions with line continuations joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stages = instructions.reduce<string[][]>((acc, l) => {
  if (/^FROM /i.test(l)) acc.push([]);
  acc[acc.length - 1]?.push(l);
  return acc;
}, []);
const finalStage = stages[stages.length - 1];
const args = Object.fromEntries(instructions.filter((l) => /^ARG /i.test(l)).map((l) => l.slice(4).split('=')).map(([k, v]) => [k.trim(), (v ?? '').trim()]));
const expand = (s: string) => s.replace(/\$\{(\w+)\}/g, (_, k: string) => args[k] ?? '');

test('the final stage is the CUDA 12 runtime (with cuDNN) and carries Node.js 22', () => {
  const from = expand(finalStage[0]);
  expect(from).toMatch(/^FROM nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+ AS runtime$/);
  expect(expand(instructions.find((l) => /^FROM node:/.test(l))!)).toMatch(/^FROM node:22-/);
  expect(finalStage.some((l) => /^COPY --from=node \/usr\/local\/bin\/node /.test(l))).toBe(true);
});

test('production dependencies only, with onnxruntime-node fetching its CUDA 12 binaries (install script allowed)', () => {
  const install = finalStage.find((l) => /npm ci/.test(l))!;
  expect(install).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev/);
  expect(install).not.toMatch(/--ignore-scripts(?!=false)/);
  expect(finalStage.some((l) => /npm (ci|install)(?!.*--omit=dev)/.test(l))).toBe(false);
});

test('runs as a non-root user, the worker as entrypoint (exec form), the stack\'s health check command', () => {
  const users = finalStage.filter((l) => /^USER /.test(l));
  expect(users.length).toBeGreaterThan(0);
  const user = users[users.length - 1].slice(5).split(':')[0];
  expect(['root', '0']).not.toContain(user);
  expect(finalStage.indexOf(users[users.length - 1])).toBeLessThan(finalStage.findIndex((l) => /^ENTRYPOINT /.test(l)));
  expect(finalStage.find((l) => /^ENTRYPOINT /.test(l))).toBe('ENTRYPOINT ["node", "/app/dist/container/worker/main.js"]');
  const health = finalStage.find((l) => /^HEALTHCHECK /.test(l))!;
  const { WORKER_HEALTH_CHECK_COMMAND } = jest.requireActual('../../lib/stack/gpu-worker-service') as { WORKER_HEALTH_CHECK_COMMAND: string[] };
  expect(health).toContain(`CMD ${JSON.stringify(WORKER_HEALTH_CHECK_COMMAND.slice(1)).replace(/","/g, '", "')}`);
  // The compiled files the entrypoint and health check name are what `npm run build` (tsc, rootDir ".") emits.
  expect(existsSync(join(ROOT, 'container/worker/main.ts'))).toBe(true);
  expect(existsSync(join(ROOT, 'container/worker/health.ts'))).toBe(true);
  expect(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')).toMatch(/"outDir": "dist"/);
});

/** Runtime imports of one file: import/export declarations that are not type-only, require(), import(). */
function runtimeImports(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      const typeOnly = c?.isTypeOnly || (c?.namedBindings && ts.isNamedImports(c.namedBindings) && !c.name && c.namedBindings.elements.length > 0 && c.namedBindings.elements.every((e) => e.isTypeOnly));
      if (!typeOnly) out.push(n.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier) && !n.isTypeOnly) {
      out.push(n.moduleSpecifier.text);
    } else if (ts.isCallExpression(n) && n.arguments.length === 1 && ts.isStringLiteral(n.arguments[0]) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) {
      out.push(n.arguments[0].text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function resolveLocal(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const c of [`${base}.ts`, join(base, 'index.ts'), base]) if (existsSync(c) && !c.endsWith('/')) return c;
  throw new Error(`${from}: cannot resolve ${spec}`);
}

test('every runtime import of the worker resolves from the production dependencies', () => {
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
  const seen = new Set<string>();
  const packages = new Map<string, string>(); // package → first importer
  const queue = [join(ROOT, 'container/worker/main.ts'), join(ROOT, 'container/worker/health.ts')];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of runtimeImports(file)) {
      if (spec.startsWith('.')) {
        const target = resolveLocal(file, spec);
        if (target.endsWith('.ts')) queue.push(target);
      } else if (!builtins.has(spec) && !builtins.has(spec.split('/')[0])) {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!packages.has(name)) packages.set(name, file.slice(ROOT.length + 1));
      }
    }
  }
  // The walk reached the runtime (the engine is loaded with a dynamic import).
  expect([...seen].some((f) => f.endsWith('container/runtime/onnx-engine.ts'))).toBe(true);
  expect([...packages.keys()]).toEqual(expect.arrayContaining(['onnxruntime-node', '@aws-sdk/client-sqs', '@aws-sdk/lib-dynamodb', 'zod']));
  const notProd = [...packages].filter(([name]) => !(name in pkg.dependencies)).map(([name, from]) => `${name} (imported by ${from}${name in pkg.devDependencies ? ', a devDependency' : ''})`);
  expect(notProd).toEqual([]);
  // And each resolves from node_modules here (the same lockfile the image installs from).
  for (const name of packages.keys()) expect([name, existsSync(join(ROOT, 'node_modules', name, 'package.json'))]).toEqual([name, true]);
});
