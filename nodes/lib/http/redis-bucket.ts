/**
 * The optional shared budget of a tenant: one token bucket kept in a Redis server the lab already
 * runs, drawn from by every Node-RED of the tenant (every lab PC), so a fleet of any size stays
 * under the tenant's limit without guessing from headers.
 *
 * One Lua script does refill + take atomically on the server (EVALSHA through ioredis' defineCommand),
 * on the server's clock (TIME), so the PCs' clocks need not agree.
 *
 * Sizing: Benchling counts L requests per fixed window of T. A bucket of capacity C refilled at r
 * lets through at most C + r·T in any stretch of T, so r = (L − C) / (T + margin) keeps every window
 * of the server's (wherever its edges fall) at or under L. C = ⌈L/20⌉ (3 of 60): a small burst
 * for a file's first requests, and 95 % of the limit as the steady rate.
 *
 * When Redis cannot be reached the caller (the governor) falls back to header-aware pacing and says
 * so; the client keeps reconnecting in the background and the bucket is used again once it is back.
 */
import type Redis from 'ioredis';
import { registerSecret } from './errors';

/**
 * ioredis is an optional dependency: only the Redis mode needs it, and the pack keeps within the
 * Flow Library's dependency budget. Loaded on first use; missing, the bucket is never ready and
 * requests are paced by headers, with the warning saying why.
 */
function loadIORedis(): typeof Redis | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('ioredis') as typeof Redis;
  } catch {
    return undefined;
  }
}

const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1])
local ts = tonumber(s[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * perMs)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / perMs)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return wait
`;

// A Redis that does not answer within this long counts as down for this request.
const COMMAND_TIMEOUT_MS = 1500;
// Right after start the connection is still being made: requests wait this long for it before
// falling back (no false "Redis down" at every deploy).
const CONNECT_GRACE_MS = 3000;
const WINDOW_MARGIN_MS = 250;

export interface RedisBucketOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// for TLS. */
  url: string;
  /** Overrides the URL's password (kept as a Node-RED credential, never in the flow). */
  password?: string;
  /** The bucket's key: the same for every PC of the tenant. */
  key: string;
  limit: number;
  windowMs: number;
}

/**
 * The password goes into the URL: ioredis lets a URL's user name come with an empty password that
 * beats a separate `password` option. It is a secret: kept out of every message.
 */
function withPassword(url: string, password?: string): string {
  if (!password) return url;
  registerSecret(password);
  try {
    const u = new URL(url);
    u.password = password; // percent-encoded by URL, decoded again by ioredis
    return u.toString();
  } catch {
    return url; // not a URL: ioredis reports it, and requests fall back to header pacing
  }
}

type TakeFn = (key: string, capacity: number, perMs: number, ttlMs: number) => Promise<number>;

export class RedisBucket {
  private readonly redis?: Redis & { labwireTake?: TakeFn };
  private lastError = '';
  private readonly createdAt = Date.now();
  private everReady = false;

  constructor(private readonly o: RedisBucketOptions) {
    const IORedis = loadIORedis();
    if (!IORedis) {
      this.lastError = 'the optional package ioredis is not installed (npm install ioredis in the Node-RED user directory)';
      return;
    }
    this.redis = new IORedis(withPassword(o.url, o.password), {
      // Never queue while disconnected: a down Redis must answer "no" at once, so requests fall back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 3000,
      commandTimeout: COMMAND_TIMEOUT_MS,
      // Keep trying in the background, at most every 5 s, for as long as the flow runs.
      retryStrategy: (times) => Math.min(times * 500, 5000),
      lazyConnect: false,
    });
    // ioredis emits 'error' for every failed (re)connect; unhandled it would crash Node-RED.
    const redis = this.redis;
    redis.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    redis.on('ready', () => {
      this.everReady = true;
    });
    redis.defineCommand('labwireTake', { numberOfKeys: 1, lua: TAKE_SCRIPT });
  }

  /** True while connected; a request then draws from the bucket, else the caller falls back. */
  get ready(): boolean {
    return this.redis?.status === 'ready';
  }

  /** Still making its first connection (briefly after start): worth waiting for, not yet a failure. */
  get starting(): boolean {
    return !!this.redis && !this.everReady && Date.now() - this.createdAt < CONNECT_GRACE_MS && this.redis.status !== 'end';
  }

  /** Why it is not ready (the client's last error), for the warning. */
  get problem(): string {
    return this.lastError || this.redis?.status || 'not connected';
  }

  /** Takes one token: 0 when granted, else how long to wait before trying again. Throws when Redis fails. */
  async take(): Promise<number> {
    const { limit, windowMs } = this.o;
    const capacity = Math.max(1, Math.ceil(limit / 20));
    const perMs = Math.max(1, limit - capacity) / (windowMs + WINDOW_MARGIN_MS);
    if (!this.redis?.labwireTake) throw new Error(this.problem);
    const wait = await this.redis.labwireTake(this.o.key, capacity, perMs, windowMs * 4);
    return Math.max(0, Number(wait) || 0);
  }

  close(): void {
    this.redis?.disconnect();
  }
}

const buckets = new Map<string, RedisBucket>();

/** One bucket (one Redis connection) per server, key and size, shared by the clients of a process. */
export function sharedBucketFor(o: RedisBucketOptions): RedisBucket {
  const id = JSON.stringify([o.url, o.password ?? '', o.key, o.limit, o.windowMs]);
  let b = buckets.get(id);
  if (!b) {
    b = new RedisBucket(o);
    buckets.set(id, b);
  }
  return b;
}

/** Closes every bucket's connection (tests; a process about to exit). */
export function closeSharedBuckets(): void {
  for (const b of buckets.values()) b.close();
  buckets.clear();
}
