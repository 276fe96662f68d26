// Runs the ipc package's throughput benchmark and reads its --json output.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const SCRIPT = 'packages/ipc/bench/throughput.mjs';
const TIMEOUT_MS = 120_000;

/**
 * Runs `node packages/ipc/bench/throughput.mjs --json` and returns
 * `{ available: true, rows }` with one row per payload size (`payloadBytes`,
 * `decoderMBps`, `copyMBps`, `socketDecoderMBps`, where MB is 10^6 bytes),
 * or `{ available: false, reason }` when the script is missing or fails.
 */
export function runIpcThroughput(root) {
  const script = join(root, SCRIPT);
  if (!existsSync(script)) return { available: false, reason: `${SCRIPT} not found` };

  const result = spawnSync(process.execPath, [script, '--json'], { cwd: root, encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 16 * 2 ** 20 });
  if (result.error) return { available: false, reason: `${SCRIPT} failed: ${result.error.message}` };
  if (result.status !== 0) {
    return { available: false, reason: `${SCRIPT} exited with status ${result.status}: ${result.stderr.trim().split('\n').at(-1)}` };
  }

  let report;
  try {
    report = JSON.parse(result.stdout);
  } catch (error) {
    return { available: false, reason: `${SCRIPT} --json printed invalid JSON: ${error.message}` };
  }
  const rows = Array.isArray(report?.results) ? report.results : [];
  const complete = rows.length > 0 && rows.every((row) => ['payloadBytes', 'decoderMBps', 'copyMBps'].every((key) => Number.isFinite(row[key])));
  if (!complete) {
    return { available: false, reason: `${SCRIPT} --json has no results with payloadBytes, decoderMBps and copyMBps` };
  }
  return { available: true, rows, decoderChunkBytes: report.decoderChunkBytes, runs: rows[0].runs };
}
