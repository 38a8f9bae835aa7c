/**
 * Jest setup (every test file): Longsight's home (logs, the local history, pulled models, run
 * announcements) in a folder of this test process's own, never the clone's .cache/ or a user's
 * LONGSIGHT_HOME: tests must neither see a developer's pulled model nor leave history behind.
 * The tiny test models stay cached in the clone (container/convert/tiny-model-package.ts).
 */
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');

const dir = path.join(os.tmpdir(), `longsight-test-home-${process.pid}`);
fs.mkdirSync(dir, { recursive: true });
process.env.LONGSIGHT_HOME = dir;
delete process.env.LONGSIGHT_MODEL_DIR;
