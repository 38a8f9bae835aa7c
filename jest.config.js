/** Jest: TypeScript through ts-jest (transpile only: isolatedModules in tsconfig.json; `npm run typecheck` does the type check). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  // Longsight's home (history, logs, pulled models) per test process, never the clone's or the user's.
  setupFiles: ['<rootDir>/test/support/isolated-home.js'],
  // Generous: a timeout is a hang detector, not a speed check (benchmarks hold speed targets), and
  // the suite must pass on a busy machine.
  testTimeout: 180000,
  maxWorkers: 2,
};
