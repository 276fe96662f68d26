// Prints one line, "N passed, N failed, N skipped", from the JSON reports
// that vitest writes in each package (test-results.json, or one
// test-results-RUNTIME.json per runtime), so that the result of the whole
// workspace reads at a glance at the end of `pnpm test`.
import { readdirSync, readFileSync } from 'node:fs';

const folders = ['packages/ipc', 'packages/syscalls', 'packages/log', 'packages/runtime', 'packages/cgroups', 'packages/init', 'apps/cli'];
let passed = 0;
let failed = 0;
let skipped = 0;

for (const folder of folders) {
  const files = readdirSync(folder).filter((name) => /^test-results(-\w+)?\.json$/.test(name));
  if (files.length === 0) {
    console.log(`${folder}: no test report (its tests did not run)`);
    failed += 1;
    continue;
  }
  for (const file of files) {
    const report = JSON.parse(readFileSync(`${folder}/${file}`, 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + report.numTodoTests;
  }
}

console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
