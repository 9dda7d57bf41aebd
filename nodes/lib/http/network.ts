/**
 * How requests leave a lab PC: keep-alive agents, HTTPS_PROXY / HTTP_PROXY with NO_PROXY (as
 * curl reads them), and an optional company CA file added to Node's trusted roots.
 * We resolve the proxy ourselves (axios' own env handling is switched off) so there is exactly one
 * rule, and HTTPS goes through the proxy with a CONNECT tunnel, which lab proxies expect.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as tls from 'tls';
import { getProxyForUrl } from 'proxy-from-env';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { AxiosRequestConfig } from 'axios';
import { badInput } from './errors';

export interface NetworkOptions {
  /** Path of a PEM file with extra CA certificates (a company root behind TLS inspection). */
  caFile?: string;
  /** An explicit proxy URL; otherwise HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment. */
  proxyUrl?: string;
  /** When true, ignore proxy settings entirely (e.g. the lab simulator on 127.0.0.1). */
  noProxy?: boolean;
}

type AgentConfig = Pick<AxiosRequestConfig, 'httpAgent' | 'httpsAgent' | 'proxy'>;

/**
 * A CONNECT tunnel whose TLS handshake with the target trusts our CA too: the proxy agent takes
 * the target's TLS options from each request, and axios has no way to pass `ca` there.
 */
class TunnelAgent extends HttpsProxyAgent<string> {
  constructor(proxy: string, private readonly extraCa?: string[]) {
    super(proxy, { keepAlive: true });
  }

  override connect(req: http.ClientRequest, opts: Parameters<HttpsProxyAgent<string>['connect']>[1]) {
    const target = opts.host;
    return super.connect(req, {
      ...opts,
      ...(this.extraCa ? { ca: this.extraCa } : {}),
      // The tunnel drops `host` from the TLS options, so a target addressed by IP would be checked
      // against "localhost"; check it against the host we actually asked for.
      checkServerIdentity: (host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(target || host, cert),
    } as typeof opts);
  }
}

/** Caches the agents of one client; they keep connections alive between requests. */
export class NetworkAgents {
  private readonly ca?: string[];
  private readonly plainHttp = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly direct: https.Agent;
  private readonly tunnels = new Map<string, https.Agent>();

  constructor(private readonly opts: NetworkOptions = {}) {
    if (opts.caFile) {
      let pem: string;
      try {
        pem = fs.readFileSync(opts.caFile, 'utf8');
      } catch (err) {
        throw badInput('http.caUnreadable', { file: opts.caFile, reason: (err as Error).message });
      }
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw badInput('http.caNotPem', { file: opts.caFile });
      // Add to, not replace, the public roots: the proxy may bypass inspection for some hosts.
      this.ca = [...tls.rootCertificates, pem];
    }
    this.direct = new https.Agent({ keepAlive: true, maxSockets: 8, ca: this.ca });
  }

  proxyFor(url: string): string | undefined {
    if (this.opts.noProxy) return undefined;
    if (this.opts.proxyUrl) return this.opts.proxyUrl;
    return getProxyForUrl(url) || undefined;
  }

  configFor(url: string): AgentConfig {
    const proxy = this.proxyFor(url);
    const isHttps = url.startsWith('https:');
    if (!proxy) return { httpAgent: this.plainHttp, httpsAgent: this.direct, proxy: false };
    if (isHttps) {
      let agent = this.tunnels.get(proxy);
      if (!agent) {
        agent = new TunnelAgent(proxy, this.ca) as unknown as https.Agent;
        this.tunnels.set(proxy, agent);
      }
      return { httpsAgent: agent, proxy: false };
    }
    // Plain HTTP through a proxy: send the absolute URL to the proxy (axios does this).
    const p = new URL(proxy);
    return {
      httpAgent: this.plainHttp,
      proxy: {
        protocol: p.protocol.replace(':', ''),
        host: p.hostname,
        port: Number(p.port) || (p.protocol === 'https:' ? 443 : 80),
        auth: p.username ? { username: decodeURIComponent(p.username), password: decodeURIComponent(p.password) } : undefined,
      },
    };
  }

  destroy(): void {
    this.plainHttp.destroy();
    this.direct.destroy();
    for (const a of this.tunnels.values()) a.destroy();
    this.tunnels.clear();
  }
}
