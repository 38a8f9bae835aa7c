#!/usr/bin/env node
/**
 * `npx longsight …`: runs the TypeScript CLI (container/cli/main.ts) through tsx, a runtime
 * dependency, so a clone needs no build step. With LONGSIGHT_USE_DIST=1 the compiled CLI
 * (`npm run build` → dist/) runs instead, as in the container image.
 */
'use strict';
const path = require('node:path');
const { pathToFileURL } = require('node:url');

async function load() {
  if (process.env.LONGSIGHT_USE_DIST === '1') return require(path.join(__dirname, '..', 'dist', 'container', 'cli', 'main.js'));
  // tsx's loader registers its CommonJS and ESM hooks (the CLI loads some modules with import()).
  const tsxDir = path.dirname(require.resolve('tsx/package.json'));
  await import(pathToFileURL(path.join(tsxDir, 'dist', 'loader.mjs')).href);
  return require(path.join(__dirname, '..', 'container', 'cli', 'main.ts'));
}

load()
  .then((cli) => cli.main(process.argv))
  .then(
    (code) => {
      process.exitCode = code;
      setTimeout(() => process.exit(code), 100).unref();
    },
    (e) => {
      // The CLI itself could not be loaded (main() reports its own errors).
      const hint = process.env.LONGSIGHT_USE_DIST === '1' ? ' (LONGSIGHT_USE_DIST=1 runs dist/: `npm run build` first)' : ' (are the dependencies installed? `npm ci`)';
      process.stderr.write(`longsight: cannot start: ${String((e && e.message) || e).split('\n')[0]}${hint}\n`);
      process.exitCode = 1;
    },
  );
