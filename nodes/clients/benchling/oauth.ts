/**
 * Benchling App authentication: OAuth2 client credentials (`POST /api/v2/token`, form-encoded,
 * client id and secret as HTTP Basic). One token per config node, shared by all its requests,
 * renewed shortly before it expires and once when the server answers 401. Tokens are secrets:
 * registered for redaction and never logged.
 */
import { Readable } from 'stream';
import type { HttpClient } from '../../lib/http/client';
import { forgetSecret, LabError, registerSecret } from '../../lib/http/errors';

/** Renew this long before the token's stated expiry (clock skew, requests in flight). */
const RENEW_BEFORE_MS = 60_000;

export class TokenSource {
  private token: string | null = null;
  private issuedAt = 0;
  private expiresAt = 0;
  private pending: Promise<string> | null = null;

  constructor(
    private readonly http: () => HttpClient,
    private readonly tokenUrl: string,
    private readonly clientId: string,
    private readonly clientSecret: string,
  ) {
    registerSecret(clientSecret);
  }

  /** A valid bearer token, fetching a new one when there is none or it is about to expire. */
  async get(): Promise<string> {
    const margin = Math.min(RENEW_BEFORE_MS, (this.expiresAt - this.issuedAt) / 5);
    if (this.token && Date.now() < this.expiresAt - margin) return this.token;
    // Concurrent requests wait for one token request.
    this.pending ??= this.fetch().finally(() => (this.pending = null));
    return this.pending;
  }

  /** Drops the current token (after a 401), so the next `get` fetches a new one. */
  invalidate(): void {
    if (this.token) forgetSecret(this.token);
    this.token = null;
    this.expiresAt = 0;
  }

  private async fetch(): Promise<string> {
    const form = 'grant_type=client_credentials';
    const basic = Buffer.from(`${encodeURIComponent(this.clientId)}:${encodeURIComponent(this.clientSecret)}`).toString('base64');
    registerSecret(basic);
    const res = await this.http().request<{ access_token?: string; expires_in?: number; token_type?: string }>({
      method: 'POST',
      path: this.tokenUrl,
      // The token endpoint authenticates with the client credentials, not with a token.
      absolute: true,
      headers: { Authorization: `Basic ${basic}` },
      body: () => ({ stream: Readable.from([form]), length: form.length, contentType: 'application/x-www-form-urlencoded' }),
      idempotent: true, // asking for another token has no side effect
    });
    const { access_token: token, expires_in: expiresIn } = res.data;
    if (!token) throw new LabError('BAD_RESPONSE', 'benchling.noAccessToken');
    if (this.token) forgetSecret(this.token);
    registerSecret(token);
    this.token = token;
    this.issuedAt = Date.now();
    this.expiresAt = this.issuedAt + (Number(expiresIn) > 0 ? Number(expiresIn) : 900) * 1000;
    return token;
  }
}
