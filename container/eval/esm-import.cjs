// Node's own dynamic import, for ES-module-only packages (see esm.ts): a plain CommonJS file, so
// neither TypeScript (which compiles import() to require() for CommonJS) nor Jest rewrites it.
module.exports = (specifier) => import(specifier);
