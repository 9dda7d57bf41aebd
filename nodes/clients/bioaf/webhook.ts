/**
 * Verifying bioAF's signed webhook deliveries, usable without Node-RED.
 *
 * bioAF signs every delivery attempt (shared/reference/bioaf-genie-api.md §1.7, from its code):
 *   X-bioAF-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>
 * with the whole `whsec_…` string as the UTF-8 key (not base64-decoded), over the exact bytes it
 * sent (Python's json.dumps, which JSON.stringify does not reproduce) — so verification needs
 * the raw body. `t` is fresh on every attempt, so a ±300 s window holds across retries.
 */
import { createHmac, timingSafeEqual } from 'crypto';
import { Journal } from '../../lib/journal';
import { errorText, type MessageKey, type MessageVars } from '../../lib/messages';

export const SIGNATURE_HEADER = 'x-bioaf-signature';
export const DELIVERY_HEADER = 'x-bioaf-delivery';
export const EVENT_HEADER = 'x-bioaf-event';
export const DEFAULT_TOLERANCE_SEC = 300;

/** `${NAME}` → the environment variable's value (Node-RED does this for properties, not for every credential). */
export function fromEnv(v: string | undefined): string {
  const s = (v ?? '').trim();
  const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(s);
  return m ? (process.env[m[1]] ?? '').trim() : s;
}

/** Secrets separated by commas, spaces or new lines (whsec_ secrets contain none of them). */
export function parseSecrets(v: string | undefined): string[] {
  return fromEnv(v)
    .split(/[\s,]+/)
    .map((s) => fromEnv(s))
    .filter(Boolean);
}

export type RejectReason =
  | 'missing_signature'
  | 'malformed_signature'
  | 'timestamp_out_of_tolerance'
  | 'signature_mismatch'
  | 'body_too_large'
  | 'invalid_json'
  | 'missing_event_id'
  | 'duplicate';

/** The HTTP status a receiver answers for each rejection. A duplicate gets 200, so bioAF stops retrying. */
export const REJECT_STATUS: Record<RejectReason, number> = {
  missing_signature: 400,
  malformed_signature: 400,
  timestamp_out_of_tolerance: 401,
  signature_mismatch: 401,
  body_too_large: 413,
  invalid_json: 400,
  missing_event_id: 400,
  duplicate: 200,
};

export interface Rejection {
  ok: false;
  reason: RejectReason;
  status: number;
  /** The explanation's message id (shared catalogue) and values, for a node to word it. */
  key: MessageKey;
  vars: MessageVars;
  /** A readable explanation in English (never contains a secret or a signature). */
  message: string;
}

export interface ParsedSignature {
  t: number;
  v1: string[];
}

/** `t=<digits>,v1=<64 hex>[,v1=…]` in any order; unknown schemes are ignored. Null when malformed. */
export function parseSignatureHeader(header: string): ParsedSignature | null {
  let t: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return null;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 't') {
      if (!/^\d{1,12}$/.test(v) || t !== undefined) return null;
      t = Number(v);
    } else if (k === 'v1') {
      if (!/^[0-9a-fA-F]{64}$/.test(v)) return null;
      v1.push(v.toLowerCase());
    }
  }
  if (t === undefined || v1.length === 0) return null;
  return { t, v1 };
}

/** The `v1` value bioAF sends for `raw` at time `t` with `secret`. */
export function computeSignature(secret: string, t: number, raw: Buffer): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${t}.`, 'utf8').update(raw).digest('hex');
}

export interface VerifyOptions {
  /** Every secret currently accepted (rotation is a hard cut-over: list the new and the old). */
  secrets: string[];
  toleranceSec?: number;
  /** Now, in unix seconds (tests). */
  now?: number;
}

/** A rejection, explained by a message id of the shared catalogue (`bioaf.webhook.*`). */
export function reject(reason: RejectReason, key: MessageKey, vars: MessageVars = {}): Rejection {
  return { ok: false, reason, status: REJECT_STATUS[reason], key, vars, message: errorText(key, vars) };
}

/** Checks the signature header against the raw body. Constant-time per candidate. */
export function verifySignature(raw: Buffer, header: string | undefined, o: VerifyOptions): { ok: true; t: number } | Rejection {
  if (header === undefined || header.trim() === '') return reject('missing_signature', 'bioaf.webhook.missingSignature');
  const sig = parseSignatureHeader(header.trim());
  if (!sig) return reject('malformed_signature', 'bioaf.webhook.malformedSignature');
  const tolerance = o.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const skew = now - sig.t;
  if (Math.abs(skew) > tolerance) {
    return reject('timestamp_out_of_tolerance', skew > 0 ? 'bioaf.webhook.timestampOld' : 'bioaf.webhook.timestampFuture', {
      skew: Math.abs(skew),
      tolerance,
    });
  }
  let match = false;
  for (const secret of o.secrets) {
    const expected = Buffer.from(computeSignature(secret, sig.t, raw), 'hex');
    for (const v of sig.v1) {
      const given = Buffer.from(v, 'hex');
      // Every candidate is compared (no early exit), each in constant time.
      if (given.length === expected.length && timingSafeEqual(given, expected)) match = true;
    }
  }
  if (!match) return reject('signature_mismatch', 'bioaf.webhook.signatureMismatch');
  return { ok: true, t: sig.t };
}

/**
 * Ids already seen (event ids and delivery ids), remembered on disk until they expire, so a
 * repeat is recognised across restarts. Expired ids are dropped on open and on `prune`; the
 * journal compacts itself as deletions pile up.
 */
export class SeenStore {
  private readonly journal: Journal<number>;

  constructor(file: string, private readonly retentionMs: number) {
    this.journal = Journal.open<number>(file);
    this.prune();
  }

  /** True if `key` was recorded and has not expired. */
  has(key: string, now = Date.now()): boolean {
    const until = this.journal.get(key);
    return until !== undefined && until > now;
  }

  /** Records `key` (synchronously on disk) until now + retention. */
  add(key: string, now = Date.now()): void {
    this.journal.set(key, now + this.retentionMs);
  }

  get size(): number {
    return this.journal.size;
  }

  /** Forgets expired ids; returns how many. */
  prune(now = Date.now()): number {
    const expired: string[] = [];
    for (const [k, until] of this.journal.entries()) if (!(until > now)) expired.push(k);
    for (const k of expired) this.journal.delete(k);
    if (expired.length > 0) this.journal.compact();
    return expired.length;
  }

  close(): void {
    this.journal.close();
  }
}
