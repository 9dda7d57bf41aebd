/**
 * The pack's Prometheus metrics, in a registry of its own (not prom-client's global one, so the
 * pack never clashes with another pack or with the host application that also uses prom-client).
 * Served by the `labwire-metrics` plugin at `GET <httpAdminRoot>/labwire/metrics`.
 *
 * The work reports to this module through tiny hooks (one call each). A hook never throws:
 * metrics are a record of the work, never a reason for it to fail.
 *
 *  - labwire_files{state}                        gauge, computed when scraped (see setFileCountsSource)
 *  - labwire_file_duration_seconds               histogram, a file's journey from sent to done
 *  - labwire_http_requests_total{service,status} counter, every HTTP attempt's outcome
 *  - labwire_rate_limit_wait_seconds_total       counter, time spent waiting for rate limits / 503s
 *  - labwire_ot2_runs_total{outcome}             counter, OT-2 runs that ended
 *  - labwire_genie_commands_total{outcome}       counter, Genie LabOS commands that ended
 *
 * Process metrics (prom-client's defaults: CPU, memory, event-loop lag, GC, handles) are added to
 * this registry when the plugin serves it (enableProcessMetrics): they are computed when scraped,
 * except the event-loop delay (Node's built-in histogram) and a GC observer, both negligible; and
 * they answer the operator's first question when the pack is slow ("is it the process?").
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { journeyEvents, journeyOwners, type JourneyRecord } from './journey';

export const registry = new Registry();

/** The states `labwire_files` always reports (0 when none). */
export const FILE_STATES = ['waiting', 'in-progress', 'retrying', 'done', 'failed'] as const;

/** Counts of files by state (keys as FILE_STATES; other keys are reported as they are). */
export type FileCounts = Record<string, number>;

let fileCountsSource: (() => FileCounts | Promise<FileCounts>) | undefined;

/**
 * Where `labwire_files` gets its numbers when scraped. The operator's-view query module (which
 * reads the journey history) registers one; until then — or when it throws — the counts come
 * from the registered watchers (fileCountsFromWatchers). Returns the function that removes it.
 */
export function setFileCountsSource(source: (() => FileCounts | Promise<FileCounts>) | undefined): () => void {
  fileCountsSource = source;
  return () => {
    if (fileCountsSource === source) fileCountsSource = undefined;
  };
}

/**
 * The fallback: the journeys of every registered watcher, by state. `waiting` = seen and waiting
 * to hold still; `in-progress` = sent, not done yet (emitted or acknowledged and post-processing);
 * `retrying`; `failed` = dead-lettered; `done` = done journeys still live plus those in the
 * watchers' history (within its retention), each counted once. Files skipped by hand are done.
 */
export function fileCountsFromWatchers(): FileCounts {
  const counts: FileCounts = Object.fromEntries(FILE_STATES.map((s) => [s, 0]));
  for (const [, owner] of journeyOwners()) {
    counts.waiting += owner.getStatus?.().pending ?? 0;
    const done = new Set<string>();
    for (const [, rec] of owner.journeys?.() ?? []) {
      if (rec.state === 'done') done.add(rec.id);
      else counts[stateOf(rec)]++;
    }
    for (const rec of owner.finishedJourneys?.() ?? []) if (rec.state === 'done' && !rec.gone) done.add(rec.id);
    counts.done += done.size;
  }
  return counts;
}

function stateOf(rec: JourneyRecord): (typeof FILE_STATES)[number] {
  switch (rec.state) {
    case 'retrying':
      return 'retrying';
    case 'failed':
      return 'failed';
    case 'done':
      return 'done';
    default:
      return 'in-progress';
  }
}

const files = new Gauge({
  name: 'labwire_files',
  help: 'Files by journey state: waiting (to hold still), in-progress, retrying, done, failed (dead-lettered).',
  labelNames: ['state'],
  registers: [registry],
  async collect() {
    let counts: FileCounts;
    try {
      counts = fileCountsSource ? await fileCountsSource() : fileCountsFromWatchers();
    } catch {
      counts = safe(fileCountsFromWatchers) ?? {};
    }
    this.reset();
    for (const s of FILE_STATES) this.set({ state: s }, 0);
    for (const [s, n] of Object.entries(counts)) if (Number.isFinite(n)) this.set({ state: s }, n);
  },
});
void files;

const fileDuration = new Histogram({
  name: 'labwire_file_duration_seconds',
  help: 'How long a file took from first sent (seen and stable) to done (processed and post-processed).',
  // Lab files take minutes to hours (a plate read, a processor, a long instrument export).
  buckets: [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400],
  registers: [registry],
});

const httpRequests = new Counter({
  name: 'labwire_http_requests_total',
  help: 'HTTP attempts by service and outcome: the status code, or network / timeout when no answer came (cancelled: the caller gave up).',
  labelNames: ['service', 'status'],
  registers: [registry],
});

const rateLimitWait = new Counter({
  name: 'labwire_rate_limit_wait_seconds_total',
  help: 'Time requests spent waiting for a rate limit (the per-tenant governor, 429) or an unavailable service (503), summed over requests.',
  registers: [registry],
});

const ot2Runs = new Counter({
  name: 'labwire_ot2_runs_total',
  help: 'OT-2 runs that ended, by outcome (succeeded, failed, stopped, not-loaded).',
  labelNames: ['outcome'],
  registers: [registry],
});

const genieCommands = new Counter({
  name: 'labwire_genie_commands_total',
  help: 'Genie LabOS commands that ended, by outcome (succeeded, failed, cancelled, timeout).',
  labelNames: ['outcome'],
  registers: [registry],
});

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

// A file's journey from first sent to done. A file skipped by hand was not processed: not counted.
journeyEvents.on('finished', (_id: string, rec: JourneyRecord | undefined) => {
  safe(() => {
    if (!rec || rec.skipped || rec.firstSentAt === undefined || rec.doneAt === undefined) return;
    const s = (rec.doneAt - rec.firstSentAt) / 1000;
    if (Number.isFinite(s) && s >= 0) fileDuration.observe(s);
  });
});

/** One HTTP attempt of `service` ended: its status code, or `network` / `timeout` / `cancelled`. */
export function countHttpAttempt(service: string, status: number | 'network' | 'timeout' | 'cancelled'): void {
  safe(() => httpRequests.inc({ service, status: String(status) }));
}

/** Awaits a wait for a rate limit (or a 503) and adds the time it really took, even when cancelled. */
export async function countedWait<T>(wait: Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await wait;
  } finally {
    safe(() => rateLimitWait.inc(Math.max(0, Date.now() - started) / 1000));
  }
}

/** An OT-2 run ended (RunOutcome.outcome). */
export function countOt2Run(outcome: string): void {
  safe(() => ot2Runs.inc({ outcome }));
}

/** A Genie LabOS command ended. */
export function countGenieCommand(outcome: 'succeeded' | 'failed' | 'cancelled' | 'timeout'): void {
  safe(() => genieCommands.inc({ outcome }));
}

let processMetrics = false;

/** Adds prom-client's process metrics to the registry (once; the plugin calls it). */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  safe(() => collectDefaultMetrics({ register: registry }));
}

/** The exposition text and its content type (`text/plain; version=0.0.4; charset=utf-8`). */
export async function scrape(): Promise<{ contentType: string; text: string }> {
  return { contentType: registry.contentType, text: await registry.metrics() };
}
