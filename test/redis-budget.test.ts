/**
 * The shared rate budget in Redis (nodes/lib/http/redis-bucket.ts) against a real Debian
 * redis-server started and stopped here: the bucket's Lua script keeps several clients together
 * under the limit, and the governor falls back to header pacing when Redis goes away — requests
 * never stop — and uses the bucket again when it is back.
 * Without redis-server: skipped on a developer machine, a FAILURE when CI=true (.ci/run installs it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisBucket } from '../nodes/lib/http/redis-bucket';
import { RateGovernor } from '../nodes/lib/http/governor';
import type { LabError } from '../nodes/lib/http/errors';
import { redisServerPath, startRedisServer, type RedisServer } from '../scripts/fleet-lib';
import { tempDir } from './support/nodered';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const REDIS = redisServerPath();
const skip = REDIS || IN_CI ? false : 'no redis-server (Debian: apt-get install -y redis-server); CI fails instead of skipping';

const waitFor = async (what: string, ok: () => boolean, ms = 30_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('shared rate budget in Redis', { skip }, () => {
  let redis: RedisServer;
  const dir = tempDir('redis');
  before(async () => {
    if (!REDIS) throw new Error('redis-server is missing: CI=true requires it (.ci/run installs it with apt-get install -y redis-server; did that step fail?)');
    redis = await startRedisServer(dir);
  });
  after(async () => {
    await redis?.stop();
  });

  test('three clients of one bucket together stay under the limit', async () => {
    const o = { url: redis.url, key: `test:${Date.now()}`, limit: 20, windowMs: 2000 };
    const buckets = [new RedisBucket(o), new RedisBucket(o), new RedisBucket(o)];
    await waitFor('the connections', () => buckets.every((b) => b.ready));
    const t0 = Date.now();
    let granted = 0;
    await Promise.all(
      buckets.map(async (b) => {
        for (let i = 0; i < 15; i++) {
          for (;;) {
            const wait = await b.take();
            if (wait === 0) break;
            await new Promise((r) => setTimeout(r, wait));
          }
          granted++;
        }
      }),
    );
    const elapsed = Date.now() - t0;
    // capacity ⌈20/20⌉ = 1, refill (20 − 1) per 2.25 s: the most the bucket can grant in `elapsed`.
    const most = 1 + (19 / 2250) * elapsed;
    assert.equal(granted, 45);
    assert.ok(granted <= most + 1e-9, `${granted} granted in ${elapsed} ms, the bucket allows ${most.toFixed(1)}`);
    for (const b of buckets) b.close();
  });

  test('a Redis user limited to the labwire:* keys, with its password as a credential: enough, and nothing more', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const IORedis = require('ioredis');
    const admin = new IORedis(redis.url);
    // The ACL docs/fleet.md gives for the pack's Redis user.
    await admin.call('ACL', 'SETUSER', 'labwire', 'on', '>FAKE_redis_pw', '~labwire:*', '+eval', '+evalsha', '+hmget', '+hset', '+pexpire', '+time', '+info');
    admin.disconnect();
    const url = redis.url.replace('redis://', 'redis://labwire@');
    const ok = new RedisBucket({ url, password: 'FAKE_redis_pw', key: 'labwire:rate:acl-test', limit: 60, windowMs: 30_000 });
    const other = new RedisBucket({ url, password: 'FAKE_redis_pw', key: 'elsewhere', limit: 60, windowMs: 30_000 });
    const wrong = new RedisBucket({ url, password: 'FAKE_wrong', key: 'labwire:rate:acl-test', limit: 60, windowMs: 30_000 });
    try {
      await waitFor('the connections', () => ok.ready && other.ready);
      assert.equal(await ok.take(), 0);
      await assert.rejects(other.take(), /NOPERM/);
      await waitFor('the refusal', () => /WRONGPASS/.test(wrong.problem));
      assert.equal(wrong.ready, false);
      assert.ok(!wrong.problem.includes('FAKE_wrong'), 'the password is in no message');
    } finally {
      for (const b of [ok, other, wrong]) b.close();
    }
  });

  test('Redis gone: requests go on paced by headers, the problem is told; Redis back: the bucket again', { timeout: 120_000 }, async () => {
    const port = Number(new URL(redis.url).port);
    const told: Array<LabError | undefined> = [];
    const shared = new RedisBucket({ url: redis.url, key: `test-fallback:${Date.now()}`, limit: 600, windowMs: 30_000 });
    const g = new RateGovernor({ limit: 600, windowMs: 30_000, shared, onSharedProblem: (e) => told.push(e) });
    await waitFor('the connection', () => shared.ready);
    const send = async () => {
      await g.acquire();
      g.settle({ 'x-rate-limit-limit': '600', 'x-rate-limit-remaining': '500', 'x-rate-limit-reset': '20' }, 200);
    };
    await send();
    assert.equal(g.pacing(), 'shared-budget');
    await redis.stop();
    for (let i = 0; i < 5; i++) await send(); // never stops
    assert.ok(g.sharedBudgetProblem, 'the governor says the shared budget is down');
    assert.equal(g.sharedBudgetProblem?.key, 'http.sharedBudgetDown');
    assert.notEqual(g.pacing(), 'shared-budget');
    assert.equal(told.length, 1, 'told once, not per request');
    redis = await startRedisServer(dir, port);
    await waitFor('the reconnect', () => shared.ready, 60_000);
    await send();
    assert.equal(g.sharedBudgetProblem, undefined);
    assert.deepEqual(told.map((e) => e?.key), ['http.sharedBudgetDown', undefined], 'told again when it is back');
    shared.close();
  });
});
