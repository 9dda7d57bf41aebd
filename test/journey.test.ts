/**
 * The journey module on its own: how failures are classified, the retry schedule, the transitions
 * after a failure and a send, and the finished-journey history (retention, newest first, flat).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  afterFailure,
  afterSend,
  classifyFailure,
  DEFAULT_RETRY_POLICY,
  failureFromMessage,
  failureOfError,
  JourneyHistory,
  noteJourney,
  registerJourneyOwner,
  retryDelay,
} from '../nodes/lib/journey';
import { LabError } from '../nodes/lib/http/errors';

describe('journey: classifying failures', () => {
  test('network, timeouts, 429/503, 5xx, 408 and proxy pages are transient; bad input, failed tasks and other 4xx are permanent', () => {
    for (const code of ['NETWORK', 'TIMEOUT', 'UNAVAILABLE', 'RATE_LIMITED', 'BAD_RESPONSE', 'CANCELLED']) assert.equal(classifyFailure({ code }), 'transient', code);
    for (const status of [500, 502, 503, 504, 408, 429]) assert.equal(classifyFailure({ code: 'HTTP', status }), 'transient', String(status));
    for (const status of [400, 401, 403, 404, 409, 422]) assert.equal(classifyFailure({ code: 'HTTP', status }), 'permanent', String(status));
    for (const code of ['BAD_INPUT', 'TASK_FAILED', 'FAILED', 'ENOENT', 'SOMETHING_NEW']) assert.equal(classifyFailure({ code }), 'permanent', code);
    assert.equal(classifyFailure({ code: 'HTTP' }), 'permanent', 'an HTTP error without a status is not guessed at');
  });

  test('a Catch message: code, status (from the node or the text), node, error file', () => {
    const caught = failureFromMessage({
      error: { message: 'Benchling POST /automation-output-processors: HTTP 502 HTML ("502 Bad Gateway")', code: 'HTTP', source: { id: 'n1', type: 'benchling-create-processor', name: '' } },
    });
    assert.equal(caught.code, 'HTTP');
    assert.equal(caught.status, 502);
    assert.equal(classifyFailure(caught), 'transient');
    assert.deepEqual(caught.node, { id: 'n1', type: 'benchling-create-processor', name: undefined });

    const fromNode = failureFromMessage({
      labwireFile: { failure: { code: 'HTTP', status: 404, message: 'x', node: { id: 'n2', type: 'benchling-upload-blob' } } },
      error: { message: 'Benchling GET: HTTP 404 not found', code: 'HTTP' },
    });
    assert.equal(fromNode.status, 404);
    assert.equal(fromNode.node?.id, 'n2');
    assert.equal(classifyFailure(fromNode), 'permanent');

    const task = failureFromMessage({
      ack: false,
      error: { code: 'TASK_FAILED', message: 'Output file processing failed (simulated): file name contains FAIL.' },
      errorFile: { id: 'blob_1', name: 'errors.csv', downloadURL: 'http://127.0.0.1/x' },
    });
    assert.equal(task.code, 'TASK_FAILED');
    assert.equal(task.errorFile?.downloadURL, 'http://127.0.0.1/x');
    assert.match(task.message, /processing failed \(simulated\)/);

    const bare = failureFromMessage({ ack: false });
    assert.equal(bare.code, 'FAILED');
    assert.equal(bare.message, 'reported as failed');
    assert.equal(classifyFailure(bare), 'permanent');
  });

  test('a pack error as the node records it keeps the code and the HTTP status', () => {
    const r = failureOfError(new LabError('HTTP', 'http.status', { what: 'Benchling POST /blobs', status: 500, detail: 'boom' }, { status: 500 }), { id: 'n', type: 'benchling-upload-blob' });
    assert.equal(r.code, 'HTTP');
    assert.equal(r.status, 500);
    assert.equal(r.node?.type, 'benchling-upload-blob');
    assert.equal(classifyFailure(r), 'transient');
  });
});

describe('journey: retries', () => {
  test('the delay doubles from the base to the cap, with jitter of ±25 %', () => {
    const p = { baseMs: 30_000, maxMs: 30 * 60_000, giveUpAfterMs: 86_400_000 };
    assert.equal(retryDelay(1, p, () => 0.5), 30_000);
    assert.equal(retryDelay(2, p, () => 0.5), 60_000);
    assert.equal(retryDelay(4, p, () => 0.5), 240_000);
    assert.equal(retryDelay(30, p, () => 0.5), 30 * 60_000);
    assert.equal(retryDelay(1, p, () => 0), 22_500);
    assert.equal(retryDelay(1, p, () => 0.999999), 37_500);
  });

  test('after a transient failure: retrying at a later time; permanent, or transient past the window: dead-lettered with the reason', () => {
    const sent = afterSend(undefined, 'j1', 10, 1, 1000);
    assert.equal(sent.state, 'emitted');
    assert.equal(sent.emitCount, 1);
    const t = afterFailure(sent, { code: 'NETWORK', message: 'reset', at: 2000 }, DEFAULT_RETRY_POLICY, 2000, () => 0.5);
    assert.equal(t.record.state, 'retrying');
    assert.equal(t.record.nextAttemptAt, 2000 + 30_000);
    assert.equal(t.record.failures, 1);
    const again = afterSend(t.record, 'j1', 10, 1, 40_000);
    assert.equal(again.emitCount, 2);
    assert.equal(again.firstSentAt, 1000);
    assert.equal(again.failure?.message, 'reset', 'the last failure stays visible while the next attempt runs');
    const p = afterFailure(again, { code: 'TASK_FAILED', message: 'rows failed', at: 50_000 }, DEFAULT_RETRY_POLICY, 50_000);
    assert.equal(p.record.state, 'failed');
    assert.equal(p.kind, 'permanent');
    assert.equal(p.record.failure?.message, 'rows failed');
    const late = afterFailure(again, { code: 'TIMEOUT', message: 'slow', at: 0 }, DEFAULT_RETRY_POLICY, 2000 + DEFAULT_RETRY_POLICY.giveUpAfterMs);
    assert.equal(late.record.state, 'failed');
    assert.equal(late.gaveUp, true);
    const other = afterSend(p.record, 'j2', 11, 2, 60_000);
    assert.equal(other.emitCount, 1, 'a new version starts a new journey');
    assert.equal(other.failure, undefined);
  });

  test('nodes note what they did on the journey of a message; unknown journeys are ignored', () => {
    const notes: unknown[] = [];
    const off = registerJourneyOwner('w1', { note: (id, steps) => notes.push([id, steps]) });
    noteJourney({ labwireFile: { watcher: 'w1', id: 'j1' } }, { blobId: 'b' });
    noteJourney({ labwireFile: { watcher: 'w2', id: 'j1' } }, { blobId: 'c' });
    noteJourney({ payload: 'x' }, { blobId: 'd' });
    off();
    noteJourney({ labwireFile: { watcher: 'w1', id: 'j1' } }, { blobId: 'e' });
    assert.deepEqual(notes, [['j1', { blobId: 'b' }]]);
  });
});

describe('journey: history', () => {
  test('finished journeys go to one file per day, are read newest first, and whole days past the retention are pruned', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journey-hist-'));
    try {
      const day = 24 * 3600_000;
      const now = Date.UTC(2026, 11, 7, 12);
      const h = new JourneyHistory<{ n: number }>(dir, 'journeys', 30 * day);
      h.append({ n: 1 }, now - 40 * day);
      h.append({ n: 2 }, now - 29 * day);
      h.append({ n: 3 }, now);
      h.append({ n: 4 }, now);
      fs.appendFileSync(path.join(dir, 'journeys-2026-12-07.jsonl'), '{"n": 5, "torn'); // a crash mid-write
      assert.deepEqual([...h.newestFirst()].map((r) => r.n), [4, 3, 2, 1]);
      assert.equal(h.prune(now), 1);
      assert.deepEqual([...h.newestFirst()].map((r) => r.n), [4, 3, 2]);
      h.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
