/**
 * The header-aware pacing policy (nodes/lib/http/rate-policy.ts): its rules one by one, then a
 * fleet in virtual time — N processes, each pacing itself only by the answers it gets, against one
 * tenant-wide fixed window of 60 per 30 s (as the simulator and Benchling keep it). Virtual time
 * makes the figures exact and the test independent of the machine's load.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bulkLimit, HeaderPacer, readRateHeaders, reserveFor, type RateHeaders } from '../nodes/lib/http/rate-policy';

const L = 60;
const T = 30_000;
const h = (remaining: number, resetS: number, limit = L): RateHeaders => ({ remaining, resetMs: resetS * 1000, limit });

describe('reading the headers', () => {
  test('all three, as strings', () => {
    assert.deepEqual(readRateHeaders({ 'x-rate-limit-limit': '60', 'x-rate-limit-remaining': '57', 'x-rate-limit-reset': '21' }), { limit: 60, remaining: 57, resetMs: 21_000 });
  });
  test('none, or unusable ones: undefined', () => {
    assert.equal(readRateHeaders({}), undefined);
    assert.equal(readRateHeaders({ 'x-rate-limit-remaining': 'x', 'x-rate-limit-reset': '3' }), undefined);
    assert.equal(readRateHeaders({ 'x-rate-limit-remaining': '3', 'x-rate-limit-reset': '-1' }), undefined);
  });
  test('the reserve: a tenth of the limit, at least 2', () => {
    assert.equal(reserveFor(60), 6);
    assert.equal(reserveFor(5), 2);
  });
});

describe('the pacing rules', () => {
  test('nothing known: one request at a time until an answer, at most 2 s each', () => {
    const p = new HeaderPacer(T, L);
    assert.equal(p.delay(0), 0);
    p.sent(0);
    assert.equal(p.delay(10), 1990, 'the second waits for the first answer');
    assert.equal(p.delay(2000), 0, 'but not for a slow one for ever');
  });

  test('shared: the window left is spread over the time left, minus reserve and our unanswered requests', () => {
    const p = new HeaderPacer(T, L);
    p.sent(0);
    p.answered(100, h(36, 30)); // 24 spent, 1 of them ours: company
    assert.equal(p.mode(100), 'shared');
    // available = 36 − 0 unanswered − 6 reserve = 30 over 30 s → one per second after our last send
    assert.equal(p.delay(100), 900);
    p.sent(1000);
    p.sent(2000);
    // two unanswered now: available 28 over the 28.1 s left, from the last send at 2000
    assert.ok(Math.abs(p.delay(2000) - 28_100 / 28) < 1);
  });

  test('bulk requests (blob parts) leave the interactive share of the tenant\'s window to polls and creates', () => {
    assert.equal(L - bulkLimit(L), 10);
    // 15 left, others spending too: interactive has 15 − 6 reserve = 9 to spread; bulk would cut
    // into the interactive share (9 − 10 < 0), so it waits for the reset.
    const p = new HeaderPacer(T, L);
    p.sent(0);
    p.answered(10, h(15, 20));
    assert.equal(p.mode(10), 'shared');
    assert.ok(p.delay(10) < 20_000 / 9 + 1, `interactive: ${p.delay(10)} ms`);
    assert.equal(p.delay(10, true), 20_000);
    // A new window with 17 left: bulk has 17 − 6 − 10 = 1 to spread over 30 s, interactive 11.
    p.sent(20);
    p.answered(30, h(17, 30));
    assert.equal(p.delay(30, true), 20 + 30_000 - 30);
    assert.equal(Math.round(p.delay(30)), Math.round(20 + 30_000 / 11 - 30));
    // Shared mode: bulk is spaced over what is left after the reserve and the interactive share.
    const q = new HeaderPacer(T, L);
    q.sent(0);
    q.answered(100, h(36, 30)); // company
    assert.equal(q.mode(100), 'shared');
    assert.equal(q.delay(100), 900); // 30 available over 30 s
    assert.equal(q.delay(100, true), 1400); // 20 available over 30 s
  });

  test('slows down as the remaining falls, and waits for the reset below the reserve', () => {
    const p = new HeaderPacer(T, L);
    p.sent(0);
    p.answered(0, h(50, 30));
    const early = p.delay(0) - 0;
    p.sent(1);
    p.answered(1, h(20, 30)); // others spent 29 meanwhile
    const later = p.delay(1);
    assert.ok(later > 2 * early, `${later} ms between requests at 20 left vs ${early} ms at 50 left`);
    p.sent(2);
    p.answered(2, h(6, 30));
    assert.ok(p.delay(2) >= 29_000, 'at the reserve: wait for the reset');
  });

  test('alone after a whole window without anyone else: no pacing; company is noticed at once', () => {
    const p = new HeaderPacer(T, L);
    let t = 0;
    let left = L;
    for (; t < 30_000; t += 1000) {
      p.sent(t);
      p.answered(t + 10, h(--left, Math.ceil((T - t - 10) / 1000)));
    }
    // window 2 starts at 31 s (a fresh window: reset moved on)
    t = 31_000;
    p.sent(t);
    p.answered(t + 10, h(L - 1, 30));
    assert.equal(p.mode(t + 10), 'alone');
    assert.equal(p.delay(t + 10), 0);
    // someone else spends 10: R falls by 11 for our one request
    p.sent(t + 20);
    p.answered(t + 30, h(L - 12, 30));
    assert.equal(p.mode(t + 30), 'shared');
    assert.ok(p.delay(t + 30) > 0);
  });

  test('unknown (nobody seen yet, not a whole window watched): no spacing, at most `reserve` unanswered', () => {
    const p = new HeaderPacer(T, L);
    p.sent(0);
    p.answered(20, h(59, 30));
    assert.equal(p.mode(20), 'unknown');
    for (let i = 0; i < 6; i++) {
      assert.equal(p.delay(21), 0, `request ${i + 1} of the burst`);
      p.sent(21);
    }
    assert.ok(p.delay(22) > 0, 'the seventh waits for an answer');
    p.answered(40, h(53, 30)); // ours only: 7 spent, 2 answered + 5 unanswered
    assert.equal(p.mode(40), 'unknown');
    assert.equal(p.delay(40), 0);
  });

  test('answers without rate headers: no header pacing (the own window still holds)', () => {
    const p = new HeaderPacer(T, L);
    p.sent(0);
    p.answered(5, undefined, true, true);
    p.sent(6);
    assert.equal(p.delay(7), 0);
  });

  test('a late answer from the previous window does not raise the remaining of the new one', () => {
    const p = new HeaderPacer(T, L);
    p.sent(0);
    p.answered(0, h(10, 1)); // old window, 1 s left
    p.sent(1500);
    p.answered(1600, h(40, 30)); // new window
    p.sent(1700);
    p.answered(1800, h(5, 1)); // late, from the old one
    assert.equal(p.view(1800)?.remaining, 40);
  });
});

// -------------------------------------------------------------------------------------------
// A fleet in virtual time
// -------------------------------------------------------------------------------------------

interface FleetResult {
  accepted: number;
  refused: number;
  /** Accepted requests per full window, averaged over the run. */
  perWindow: number;
  acceptedBy: number[];
  /** When each process's accepted requests reached the server. */
  acceptedAt: number[][];
}

/**
 * N processes with endless work (each up to `concurrency` requests in flight), latency 40–120 ms,
 * against one fixed window of `limit` per `windowMs` that starts with the first request after the
 * last one ended (as the simulator keeps it). `active(i, t)` says whether process i has work at t.
 */
function runFleet(n: number, o: { durationMs: number; concurrency?: number; active?: (i: number, t: number) => boolean; seed?: number }): FleetResult {
  let seed = o.seed ?? 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const concurrency = o.concurrency ?? 4;
  const pacers = Array.from({ length: n }, () => new HeaderPacer(T, L));
  const own: number[][] = Array.from({ length: n }, () => []);
  const inFlight = new Array(n).fill(0);
  const acceptedBy = new Array(n).fill(0);
  const acceptedAt: number[][] = Array.from({ length: n }, () => []);
  const wakeAt = new Array(n).fill(Infinity);
  let win = { start: -Infinity, count: 0 };
  let accepted = 0;
  let refused = 0;
  // events: [time, kind, process, payload]
  type Ev = { t: number; run: () => void };
  const queue: Ev[] = [];
  const at = (t: number, run: () => void) => {
    queue.push({ t, run });
  };
  const serve = (t: number): { ok: boolean; headers: RateHeaders } => {
    if (t - win.start >= T) win = { start: t, count: 0 };
    const ok = win.count < L;
    if (ok) win.count++;
    return { ok, headers: { limit: L, remaining: L - win.count, resetMs: Math.ceil((win.start + T - t) / 1000) * 1000 } };
  };
  // One pending wake-up per process (answers also wake it, as the governor's nudge does).
  const wake = (i: number, t: number) => {
    if (wakeAt[i] <= t) return;
    wakeAt[i] = t;
    at(t, () => {
      if (wakeAt[i] !== t) return;
      wakeAt[i] = Infinity;
      tryNext(i, t);
    });
  };
  const tryNext = (i: number, t: number): void => {
    if (o.active && !o.active(i, t)) return wake(i, t + 500);
    if (inFlight[i] >= concurrency) return; // woken by an answer
    const sent = own[i];
    while (sent.length && sent[0] <= t - T - 250) sent.shift();
    let wait = pacers[i].delay(t);
    if (sent.length >= L) wait = Math.max(wait, sent[0] + T + 250 - t);
    if (wait > 0) return wake(i, t + Math.min(wait, 1000));
    pacers[i].sent(t);
    sent.push(t);
    inFlight[i]++;
    const up = 20 + rand() * 40;
    const down = 20 + rand() * 40;
    at(t + up, () => {
      const r = serve(t + up);
      if (r.ok) {
        accepted++;
        acceptedBy[i]++;
        acceptedAt[i].push(t + up);
      } else refused++;
      at(t + up + down, () => {
        inFlight[i]--;
        pacers[i].answered(t + up + down, r.headers, r.ok);
        tryNext(i, t + up + down);
      });
    });
    wake(i, t + 1); // more work waiting: the next request
  };
  for (let i = 0; i < n; i++) wake(i, rand() * 50);
  let now = 0;
  while (queue.length) {
    queue.sort((a, b) => a.t - b.t);
    const ev = queue.shift()!;
    if (ev.t > o.durationMs) break;
    now = ev.t;
    ev.run();
  }
  void now;
  return { accepted, refused, perWindow: accepted / (o.durationMs / T), acceptedBy, acceptedAt };
}

describe('a fleet sharing one tenant window, in virtual time', () => {
  test('5 processes: no 429, at least 0.8 of the limit together', (t) => {
    const r = runFleet(5, { durationMs: 10 * T });
    t.diagnostic(`5 processes: ${r.perWindow.toFixed(1)} of ${L} per window, ${r.refused} × 429, per process ${r.acceptedBy.join('/')}`);
    assert.equal(r.refused, 0, `${r.refused} × 429`);
    assert.ok(r.perWindow >= 0.8 * L, `${r.perWindow.toFixed(1)} requests per window of ${L}`);
    assert.ok(Math.min(...r.acceptedBy) > 0.5 * (r.accepted / 5), `every process gets its share: ${r.acceptedBy.join(', ')}`);
  });

  test('one process alone keeps at least 0.9 of the limit', (t) => {
    const r = runFleet(1, { durationMs: 10 * T });
    t.diagnostic(`1 process: ${r.perWindow.toFixed(1)} of ${L} per window, ${r.refused} × 429`);
    assert.equal(r.refused, 0);
    assert.ok(r.perWindow >= 0.9 * L, `${r.perWindow.toFixed(1)} requests per window of ${L}`);
  });

  test('many requests in flight per process (10 files each) started together: never a 429', (t) => {
    const r = runFleet(5, { durationMs: 10 * T, concurrency: 10 });
    t.diagnostic(`5 processes × 10 in flight: ${r.perWindow.toFixed(1)} of ${L} per window, ${r.refused} × 429`);
    assert.equal(r.refused, 0, `${r.refused} × 429`);
    assert.ok(r.perWindow >= 0.8 * L);
  });

  test('2 to 6 processes and other seeds: never a 429', () => {
    for (const n of [2, 3, 4, 6]) {
      for (const seed of [1, 2, 3]) {
        const r = runFleet(n, { durationMs: 6 * T, seed });
        assert.equal(r.refused, 0, `${n} processes, seed ${seed}: ${r.refused} × 429`);
        assert.ok(r.perWindow >= 0.75 * L, `${n} processes, seed ${seed}: ${r.perWindow.toFixed(1)} per window`);
      }
    }
  });

  test('when the others go quiet, the last one is back at full speed within two windows', () => {
    const quietAt = 4 * T;
    const r = runFleet(5, { durationMs: 10 * T, active: (i, t) => i === 0 || t < quietAt });
    assert.equal(r.refused, 0);
    // From two windows after the others stopped, process 0 alone uses ≥ 0.9 of the limit.
    const late = r.acceptedAt[0].filter((t) => t >= quietAt + 2 * T).length;
    assert.ok(late >= 0.9 * L * 4, `${late} requests in the last 4 windows (limit ${4 * L})`);
  });
});
