// Prints one line, "N passed, N failed, N skipped", from the JSON reports
// that vitest writes in each package (test-results.json), so that the
// result of the whole workspace reads at a glance at the end of `pnpm test`.
import { existsSync, readFileSync } from 'node:fs';

const folders = ['packages/ipc', 'packages/syscalls', 'packages/log', 'packages/init', 'apps/cli'];
let passed = 0;
let failed = 0;
let skipped = 0;

for (const folder of folders) {
  const file = `${folder}/test-results.json`;
  if (!existsSync(file)) {
    console.log(`${folder}: no test report (its tests did not run)`);
    failed += 1;
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
}

console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
