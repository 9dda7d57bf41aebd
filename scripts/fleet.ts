// `npm run fleet -- [--processes N] [--files N] [--mode headers|redis|both|single] [--limit N] [--window-s S]
//                   [--stop-redis-at 0.5] [--json FILE] [--log FILE]`
//
// Many lab PCs, one Benchling tenant (issue 15): the simulator with one tenant-wide window
// (60 per 30 s), N real node-red processes running example 01, each with its own watched folder and
// files, all started together. Prints aggregate files/min against the bound (limit ÷ requests per
// file) and the 429 count, per mode:
//   headers — every Node-RED paces itself by the rate headers (the default, nothing to set up);
//   redis   — all draw from one token bucket in a real redis-server (Debian's), stopped mid-run
//             with --stop-redis-at (the rest goes on paced by headers, with a warning);
//   single  — one Node-RED alone (sharing must not cost the single PC);
//   both    — headers, then redis (default), then single.
// Exits 1 when an acceptance of issue 15 fails.
import * as fs from 'fs';
import { formatFleet, redisServerPath, runFleet, type FleetResult } from './fleet-lib';

function arg(name: string): string | undefined {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
}

async function main(): Promise<void> {
  const processes = Number(arg('processes') ?? 5);
  const files = Number(arg('files') ?? 40);
  const limit = Number(arg('limit') ?? 60);
  const windowMs = Number(arg('window-s') ?? 30) * 1000;
  const mode = arg('mode') ?? 'both';
  const stopRedisAt = arg('stop-redis-at') !== undefined ? Number(arg('stop-redis-at')) : undefined;
  const logFile = arg('log');
  const onLog = logFile ? (l: string) => fs.appendFileSync(logFile, l + '\n') : undefined;
  const onProgress = (l: string) => console.log(`  … ${l}`);
  const results: FleetResult[] = [];
  const problems: string[] = [];
  const run = async (m: 'headers' | 'redis', n: number, extra: { stopRedisAt?: number } = {}) => {
    console.log(`\n${m} mode: ${n} × ${files} files, limit ${limit} per ${windowMs / 1000} s`);
    const r = await runFleet({ processes: n, filesPerProcess: files, mode: m, limit, windowMs, onLog, onProgress, ...extra });
    console.log(formatFleet(r));
    results.push(r);
    if (r.done !== r.files || r.duplicates !== 0 || r.leftInFolders !== 0) problems.push(`${m} ×${n}: not every file done exactly once`);
    return r;
  };
  if (mode === 'headers' || mode === 'both') {
    const r = await run('headers', processes);
    if (r.rateLimited429 !== 0) problems.push(`headers ×${processes}: ${r.rateLimited429} × 429 (target 0)`);
    if (r.ratio < 0.8) problems.push(`headers ×${processes}: ratio ${r.ratio} (target ≥ 0.8)`);
  }
  if (mode === 'redis' || mode === 'both') {
    if (!redisServerPath()) throw new Error('redis mode needs redis-server (Debian: apt-get install -y redis-server)');
    const r = await run('redis', processes);
    if (r.rateLimited429 !== 0) problems.push(`redis ×${processes}: ${r.rateLimited429} × 429 (target 0)`);
    if (r.ratio < 0.9) problems.push(`redis ×${processes}: ratio ${r.ratio} (target ≥ 0.9)`);
    const s = await run('redis', processes, { stopRedisAt: stopRedisAt ?? 0.4 });
    if (!s.fallbackWarned) problems.push('redis stopped: no Node-RED warned of the fallback');
  }
  if (mode === 'single' || mode === 'both') {
    const r = await run('headers', 1);
    if (r.rateLimited429 !== 0) problems.push(`single: ${r.rateLimited429} × 429`);
    if (r.ratio < 0.9) problems.push(`single: ratio ${r.ratio} (target ≥ 0.9)`);
  }
  const json = arg('json');
  if (json) fs.writeFileSync(json, JSON.stringify(results, null, 2));
  console.log(`\n${JSON.stringify(results)}`);
  if (problems.length) {
    console.log(`\nMISSED:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } else console.log('\nall fleet acceptances met');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
