// Fault injection for the Benchling simulator: which request gets which fault (a deterministic queue
// first, then probabilistic shares), and how each fault is put on the wire.
//
// Three phases:
//   * before handling — '429', '500', '503', 'reset', 'hang', 'html': the request changes no state;
//   * delayed         — 'slow': the request is handled normally, but only after a delay (the server
//                       acts even when the client has given up meanwhile); 'trickle': handled
//                       normally, the headers are sent at once and the body one byte at a time;
//   * after handling  — 'resetAfter', '500After', 'htmlAfter': the request is handled (state
//                       changes), then the answer is lost: the socket is destroyed, or a 500 / a 502
//                       HTML page is sent instead. These orphan blobs and duplicate processors.
// A FaultSpec { kind: 'reset' | '500' | 'html', after: true } means the same as the After kinds.
import * as crypto from 'node:crypto';
import type * as http from 'node:http';

export type FaultKind =
  | '429'
  | '500'
  | '503'
  | 'reset'
  | 'hang'
  | 'html'
  | 'slow'
  | 'trickle'
  | 'resetAfter'
  | '500After'
  | 'htmlAfter';

/** The before-handling kinds (the only ones the Genie simulator knows). */
export type BasicFaultKind = '429' | '500' | '503' | 'reset' | 'hang' | 'html';

/** Every fault kind, in the order probabilistic shares are drawn. */
export const FAULT_KINDS: readonly FaultKind[] = ['429', '500', '503', 'reset', 'hang', 'html', 'slow', 'trickle', 'resetAfter', '500After', 'htmlAfter'];

export type FaultPhase = 'before' | 'delay' | 'after';

/** Deterministic fault, applied to the next `times` matching requests. */
export interface FaultSpec {
  kind: FaultKind;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  /** HTTP method to match (case-insensitive); any method when absent. */
  method?: string;
  /** Tested against the request path (e.g. /api/v2/blobs/…/parts); any path when absent. */
  path?: RegExp;
  /**
   * With kind 'reset' | '500' | 'html': apply the fault AFTER handling (the server acts, the answer
   * is lost) — the same as 'resetAfter' | '500After' | 'htmlAfter'.
   */
  after?: boolean;
  /** 'slow': the delay in ms (default: drawn between the simulator's slowMinMs and slowMaxMs). */
  delayMs?: number;
}

/** A FaultSpec limited to the before-handling kinds. */
export type BasicFaultSpec = Omit<FaultSpec, 'kind' | 'after' | 'delayMs'> & { kind: BasicFaultKind };

/** Probabilistic faults: each a share 0..1 of requests (drawn once per request, cumulatively). */
export interface FaultProbabilities {
  p429?: number;
  p500?: number;
  p503?: number;
  /** destroy the socket without answering (before handling) */
  pReset?: number;
  /** never answer (until the client gives up or the server closes) */
  pHang?: number;
  /** 502 with an HTML page (text/html), like a proxy in front of the API */
  pHtml?: number;
  /** the real answer, after a delay (FaultTimings.slowMinMs..slowMaxMs) */
  pSlow?: number;
  /** the real answer's headers at once, then its body one byte per FaultTimings.trickleByteMs */
  pTrickle?: number;
  /** handled (state changes), then the socket is destroyed */
  pResetAfter?: number;
  /** handled (state changes), then a 500 instead of the real answer */
  p500After?: number;
  /** handled (state changes), then a 502 HTML page instead of the real answer */
  pHtmlAfter?: number;
}

export interface FaultTimings {
  /** 'slow' delay range in ms. Default 1000..3000. */
  slowMinMs?: number;
  slowMaxMs?: number;
  /** 'trickle': ms between body bytes. Default 1000 (one byte per second). */
  trickleByteMs?: number;
}

/** The probability key of each kind. */
export const FAULT_SHARE_KEYS: Record<FaultKind, keyof FaultProbabilities> = {
  '429': 'p429',
  '500': 'p500',
  '503': 'p503',
  reset: 'pReset',
  hang: 'pHang',
  html: 'pHtml',
  slow: 'pSlow',
  trickle: 'pTrickle',
  resetAfter: 'pResetAfter',
  '500After': 'p500After',
  htmlAfter: 'pHtmlAfter',
};

export function faultPhase(kind: FaultKind): FaultPhase {
  if (kind === 'slow' || kind === 'trickle') return 'delay';
  if (kind === 'resetAfter' || kind === '500After' || kind === 'htmlAfter') return 'after';
  return 'before';
}

/** The kind a spec stands for: { kind: 'reset', after: true } → 'resetAfter' (and so on). */
export function resolveFaultKind(spec: Pick<FaultSpec, 'kind' | 'after'>): FaultKind {
  if (!FAULT_KINDS.includes(spec.kind)) throw new Error(`unknown fault kind: ${String(spec.kind)}`);
  if (!spec.after || faultPhase(spec.kind) === 'after') return spec.kind;
  switch (spec.kind) {
    case 'reset':
      return 'resetAfter';
    case '500':
      return '500After';
    case 'html':
      return 'htmlAfter';
    default:
      throw new Error(`fault kind '${spec.kind}' has no after-handling variant (after: true works with 'reset', '500' and 'html')`);
  }
}

/** `total` (0..1) spread evenly over `kinds` (default: every kind). */
export function spreadFaults(total: number, kinds: readonly FaultKind[] = FAULT_KINDS): FaultProbabilities {
  if (!(total >= 0 && total <= 1)) throw new Error(`fault share must be between 0 and 1, got ${total}`);
  const out: FaultProbabilities = {};
  if (kinds.length === 0) return out;
  for (const k of kinds) out[FAULT_SHARE_KEYS[k]] = total / kinds.length;
  return out;
}

export function emptyFaultCounters(): Record<FaultKind, number> {
  return Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
}

export interface PickedFault {
  kind: FaultKind;
  phase: FaultPhase;
  /** 'slow': how long to wait before handling. */
  delayMs?: number;
}

/** Chooses the fault (if any) for each request: the deterministic queue first, then the shares. */
export class FaultPlan {
  private queue: Array<FaultSpec & { kind: FaultKind; remaining: number }> = [];
  private probs: FaultProbabilities;
  private timings: Required<FaultTimings>;

  constructor(
    probs: FaultProbabilities = {},
    timings: FaultTimings = {},
    private readonly random: () => number = Math.random,
  ) {
    this.probs = { ...probs };
    this.timings = { slowMinMs: 1000, slowMaxMs: 3000, trickleByteMs: 1000 };
    this.setTimings(timings);
  }

  inject(spec: FaultSpec): void {
    const kind = resolveFaultKind(spec);
    this.queue.push({ ...spec, kind, remaining: spec.times ?? 1 });
  }

  clear(): void {
    this.queue = [];
  }

  setProbabilities(p: FaultProbabilities): void {
    this.probs = { ...p };
  }

  get probabilities(): FaultProbabilities {
    return { ...this.probs };
  }

  setTimings(t: FaultTimings): void {
    const next = { ...this.timings, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) };
    if (next.slowMaxMs < next.slowMinMs) next.slowMaxMs = next.slowMinMs;
    this.timings = next;
  }

  get trickleByteMs(): number {
    return this.timings.trickleByteMs;
  }

  /**
   * The fault for a request, or undefined. `download`: a pre-signed download (no state to change,
   * streamed by other code): a 'trickle' drawn for it becomes 'slow'.
   */
  pick(method: string, pathname: string, download = false): PickedFault | undefined {
    const drawn = this.draw(method, pathname);
    if (!drawn) return undefined;
    const kind = download && drawn.kind === 'trickle' ? 'slow' : drawn.kind;
    const out: PickedFault = { kind, phase: faultPhase(kind) };
    if (kind === 'slow') {
      const { slowMinMs, slowMaxMs } = this.timings;
      out.delayMs = drawn.spec?.delayMs ?? Math.round(slowMinMs + this.random() * (slowMaxMs - slowMinMs));
    }
    return out;
  }

  private draw(method: string, pathname: string): { kind: FaultKind; spec?: FaultSpec } | undefined {
    for (let i = 0; i < this.queue.length; i++) {
      const f = this.queue[i];
      if (f.method && f.method.toUpperCase() !== method) continue;
      if (f.path) {
        f.path.lastIndex = 0;
        if (!f.path.test(pathname)) continue;
      }
      f.remaining--;
      if (f.remaining <= 0) this.queue.splice(i, 1);
      return { kind: f.kind, spec: f };
    }
    const p = this.probs;
    const shares = FAULT_KINDS.map((k) => [k, p[FAULT_SHARE_KEYS[k]]] as const);
    if (!shares.some(([, s]) => s && s > 0)) return undefined;
    let r = this.random();
    for (const [kind, s] of shares) {
      if (!s || s <= 0) continue;
      if (r < s) return { kind };
      r -= s;
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Putting faults on the wire
// ---------------------------------------------------------------------------------------------

export function errorBody(type: string, message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { error: { type, message, userMessage: message, ...extra } };
}

export const BAD_GATEWAY_HTML =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n';

/** What a fault needs from the server. */
export interface FaultWire {
  isApi: boolean;
  sendJson(res: http.ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void;
  /** Rate-limit headers (remaining overridden for injected 429s). */
  rateHeaders(remainingOverride?: number): Record<string, string>;
  /** Hands the faulted answer to the validator (JSON or HTML; nothing for resets and hangs). */
  report(status: number, body: unknown, contentType: string): void;
}

/**
 * Answers a request with a fault instead of handling it ('429', '500', '503', 'reset', 'hang',
 * 'html'), or instead of the handled answer ('resetAfter', '500After', 'htmlAfter').
 */
export function sendFault(kind: Exclude<FaultKind, 'slow' | 'trickle'>, req: http.IncomingMessage, res: http.ServerResponse, wire: FaultWire): void {
  switch (kind) {
    case 'reset':
    case 'resetAfter':
      req.socket.destroy();
      return;
    case 'hang':
      // never answer; the client's timeout or the simulator's close() ends it
      return;
    case 'html':
    case 'htmlAfter': {
      res.writeHead(502, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(BAD_GATEWAY_HTML)) });
      res.end(BAD_GATEWAY_HTML);
      wire.report(502, undefined, 'text/html');
      return;
    }
    case '429': {
      const body = errorBody('invalid_request_error', 'Rate limit exceeded.');
      wire.sendJson(res, 429, body, wire.isApi ? wire.rateHeaders(0) : {});
      wire.report(429, body, 'application/json');
      return;
    }
    case '500':
    case '500After':
    case '503': {
      const status = kind === '503' ? 503 : 500;
      const body =
        status === 503
          ? errorBody('api_error', 'Service unavailable (simulated).')
          : errorBody('api_error', 'Internal server error (simulated).', { errorId: crypto.randomUUID() });
      wire.sendJson(res, status, body, wire.isApi ? wire.rateHeaders() : {});
      wire.report(status, body, 'application/json');
      return;
    }
  }
}

/**
 * Slow-loris answer: the headers (with the real content-length) at once, then the body one byte
 * every `byteMs`. Stops when the client goes away; `track` registers the timer so close() can
 * clear it.
 */
export function trickle(
  res: http.ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: Buffer,
  byteMs: number,
  track: { add(t: NodeJS.Timeout): void; delete(t: NodeJS.Timeout): void },
): void {
  res.writeHead(status, { ...headers, 'content-length': String(body.length) });
  res.flushHeaders();
  let i = 0;
  const step = () => {
    if (res.destroyed || res.writableEnded) return;
    if (i >= body.length) {
      res.end();
      return;
    }
    res.write(body.subarray(i, i + 1));
    i++;
    const t = setTimeout(() => {
      track.delete(t);
      step();
    }, byteMs);
    track.add(t);
  };
  step();
}
