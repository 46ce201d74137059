// Reads each layer's JSON report and exit code (written by scripts/test.sh) and prints one line of
// counts for the whole run. A layer that exited non-zero without a report of failures counts as
// one failure, so a crashed runner can never pass as "0 failed".
import { existsSync, readFileSync } from 'node:fs';

const layers = Object.fromEntries(
  readFileSync('test-results/layers.txt', 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
    .map(([name, rc]) => [name, Number(rc)]),
);

function vitestCounts(file) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  return { passed: report.numPassedTests, failed: report.numFailedTests, skipped: report.numPendingTests + report.numTodoTests };
}

function playwrightCounts(file) {
  const { stats } = JSON.parse(readFileSync(file, 'utf8'));
  return { passed: stats.expected + stats.flaky, failed: stats.unexpected, skipped: stats.skipped };
}

const reports = { unit: ['test-results/unit.json', vitestCounts], gpu: ['test-results/gpu.json', vitestCounts], e2e: ['test-results/e2e.json', playwrightCounts] };

const total = { passed: 0, failed: 0, skipped: 0 };
for (const [name, rc] of Object.entries(layers)) {
  let counts = { passed: 0, failed: 0, skipped: 0 };
  const report = reports[name];
  if (report && existsSync(report[0])) counts = report[1](report[0]);
  else if (rc === 0) counts.passed = 1; // a check without per-test counts (typecheck, build)
  if (rc !== 0 && counts.failed === 0) counts.failed = 1;
  console.log(`  ${name.padEnd(10)} ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (exit ${rc})`);
  for (const key of Object.keys(total)) total[key] += counts[key];
}
console.log(`hearth: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(total.failed === 0 ? 0 : 1);
