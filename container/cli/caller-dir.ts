/**
 * Where the caller's relative paths start: the current folder, except under `npm start` / `npm run`
 * of this package, which npm runs in the package root (INIT_CWD is where npm was called).
 */
export function callerDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return env.npm_package_name === 'longsight' && env.INIT_CWD ? env.INIT_CWD : cwd;
}
