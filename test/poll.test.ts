/** The shared poller: backoff, terminal states, transient failures, timeout, cancellation. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil } from '../nodes/lib/poll';
import { LabError } from '../nodes/lib/http/errors';

describe('pollUntil', () => {
  test('polls until done, waiting longer each time up to the maximum', async () => {
    const times: number[] = [];
    const t0 = Date.now();
    const result = await pollUntil(
      async () => {
        times.push(Date.now() - t0);
        return times.length;
      },
      (n) => n >= 5,
      { intervalMs: 40, maxIntervalMs: 100, factor: 2 },
    );
    assert.equal(result, 5);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // 40, 80, 100, 100 (capped), with timer slack
    assert.ok(gaps[0] >= 38 && gaps[1] >= 78 && gaps[2] >= 98 && gaps[3] >= 98, `gaps ${gaps}`);
    assert.ok(gaps[3] < 200, `the wait is capped: ${gaps}`);
  });

  test('keeps polling through transient failures and reports them', async () => {
    let n = 0;
    const errors: string[] = [];
    const result = await pollUntil(
      async () => {
        n++;
        if (n <= 2) throw new LabError('NETWORK', 'http.network', { what: 'GET /task', reason: 'ECONNRESET' });
        return 'SUCCEEDED';
      },
      (s) => s === 'SUCCEEDED',
      { intervalMs: 5, onPoll: ({ error }) => error && errors.push(error.code) },
    );
    assert.equal(result, 'SUCCEEDED');
    assert.deepEqual(errors, ['NETWORK', 'NETWORK']);
  });

  test('a non-transient failure ends the poll at once', async () => {
    let n = 0;
    await assert.rejects(
      pollUntil(
        async () => {
          n++;
          throw new LabError('HTTP', 'http.status', { what: 'GET /task', status: 404, detail: 'not found' }, { status: 404 });
        },
        () => false,
        { intervalMs: 5 },
      ),
      /not found/,
    );
    assert.equal(n, 1);
  });

  test('gives up at the timeout with a TIMEOUT error naming what it followed', async () => {
    await assert.rejects(
      pollUntil(async () => 'RUNNING', () => false, { intervalMs: 20, timeoutMs: 120, what: 'task abc' }),
      (err: LabError) => err.code === 'TIMEOUT' && /task abc/.test(err.message),
    );
  });

  test('stops promptly when cancelled', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('node closed')), 50);
    const t0 = Date.now();
    await assert.rejects(
      pollUntil(async () => 'RUNNING', () => false, { intervalMs: 10_000, signal: ac.signal }),
      (err: LabError) => err.code === 'CANCELLED',
    );
    assert.ok(Date.now() - t0 < 1000);
  });
});
