// `npm run sim -- --port 4010 [--host 127.0.0.1] [--api-key KEY]… [--rate-limit 60/30|off]
//                 [--task-ms 1500] [--faults 0.2 | --faults p500=0.1,p429=0.05,pResetAfter=0.02]
//                 [--slow-ms 1000-3000] [--trickle-ms 1000] [--url-ttl 300]`
// `--faults 0.2` spreads 20 % of requests evenly over every fault kind (429, 500, 503, reset, hang,
// html, slow, trickle, resetAfter, 500After, htmlAfter); `--faults 0.2,pHang=0` does the same and
// then sets single shares.
// Starts the lab simulator and prints the Benchling URL, API key and seeded ids.
import {
  startLabSimulator,
  spreadFaults,
  FAULT_KINDS,
  FAULT_SHARE_KEYS,
  SEED,
  DEFAULT_BIOAF_API_KEY,
  DEFAULT_GENIE_TOKEN,
  GENIE_SEED,
  type FaultProbabilities,
  type FaultTimings,
  type RateLimitOptions,
} from './index';

function usage(msg?: string): never {
  if (msg) console.error(`sim: ${msg}`);
  console.error(
    'usage: npm run sim -- [--port N] [--host H] [--api-key KEY]... [--rate-limit LIMIT/SECONDS|off]\n' +
      '                      [--task-ms MS] [--faults SHARE | --faults [SHARE,]p429=0.05,p500=0.1,...] [--url-ttl SECONDS]\n' +
      '                      [--slow-ms MIN-MAX] [--trickle-ms MS]\n' +
      `  fault shares: ${FAULT_KINDS.map((k) => FAULT_SHARE_KEYS[k]).join(', ')}; a bare SHARE spreads over all of them\n` +
      '                      [--bioaf-port N] [--genie-port N] [--ot2-port N] [--ot2-legacy-port N]',
  );
  process.exit(2);
}

function parseArgs(argv: string[]) {
  const out: {
    port: number;
    host: string;
    apiKeys: string[];
    rateLimit?: RateLimitOptions | false;
    taskMs?: number;
    faults?: FaultProbabilities;
    faultTimings: FaultTimings;
    urlTtl?: number;
    bioafPort?: number;
    geniePort?: number;
    ot2Port?: number;
    ot2LegacyPort?: number;
  } = { port: 4010, host: '127.0.0.1', apiKeys: [], faultTimings: {} };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const val = () => {
      if (v !== undefined) return v;
      const n = argv[++i];
      if (n === undefined) usage(`${a} needs a value`);
      return n;
    };
    const num = (s: string) => {
      const n = Number(s);
      if (!Number.isFinite(n) || n < 0) usage(`${a}: not a number: ${s}`);
      return n;
    };
    switch (a) {
      case '--port':
        out.port = num(val());
        break;
      case '--host':
        out.host = val();
        break;
      case '--api-key':
        out.apiKeys.push(val());
        break;
      case '--rate-limit': {
        const s = val();
        if (s === 'off' || s === 'false' || s === '0') out.rateLimit = false;
        else {
          const m = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(s);
          if (!m) usage(`--rate-limit wants LIMIT/SECONDS (e.g. 60/30) or off, got ${s}`);
          out.rateLimit = { limit: Number(m[1]), windowMs: Number(m[2]) * 1000 };
        }
        break;
      }
      case '--task-ms':
        out.taskMs = num(val());
        break;
      case '--url-ttl':
        out.urlTtl = num(val());
        break;
      case '--bioaf-port':
        out.bioafPort = num(val());
        break;
      case '--ot2-port':
        out.ot2Port = num(val());
        break;
      case '--ot2-legacy-port':
        out.ot2LegacyPort = num(val());
        break;
      case '--genie-port':
        out.geniePort = num(val());
        break;
      case '--slow-ms': {
        const s = val();
        const m = /^(\d+)(?:-(\d+))?$/.exec(s);
        if (!m) usage(`--slow-ms wants MS or MIN-MAX, got ${s}`);
        out.faultTimings.slowMinMs = Number(m[1]);
        out.faultTimings.slowMaxMs = Number(m[2] ?? m[1]);
        break;
      }
      case '--trickle-ms':
        out.faultTimings.trickleByteMs = num(val());
        break;
      case '--faults': {
        const f: Record<string, number> = {};
        const keys: Record<string, keyof FaultProbabilities> = Object.fromEntries(
          Object.values(FAULT_SHARE_KEYS).map((k) => [k.toLowerCase(), k]),
        );
        for (const kv of val().split(',').filter(Boolean)) {
          if (!kv.includes('=')) {
            const n = Number(kv);
            if (!(n >= 0 && n <= 1)) usage(`--faults: a total share must be between 0 and 1, got ${kv}`);
            Object.assign(f, spreadFaults(n));
            continue;
          }
          const [k, s] = kv.split('=');
          const key = keys[k.trim().toLowerCase()];
          if (!key || s === undefined) usage(`--faults: bad entry ${kv}`);
          const n = Number(s);
          if (!(n >= 0 && n <= 1)) usage(`--faults: ${k} must be between 0 and 1`);
          f[key] = n;
        }
        out.faults = f as FaultProbabilities;
        break;
      }
      case '-h':
      case '--help':
        usage();
      // eslint-disable-next-line no-fallthrough
      default:
        usage(`unknown argument ${a}`);
    }
  }
  return out;
}

function describeFaults(f: FaultProbabilities): string {
  const parts = Object.entries(f)
    .filter(([, v]) => v && v > 0)
    .map(([k, v]) => `${k}=${Number((v as number).toFixed(4))}`);
  const total = Object.values(f).reduce((a, v) => a + (v ?? 0), 0);
  return parts.length ? `${Math.round(total * 1000) / 10} % of requests (${parts.join(', ')})` : 'none';
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const sim = await startLabSimulator({
    host: args.host,
    benchling: {
      port: args.port,
      apiKeys: args.apiKeys.length ? args.apiKeys : undefined,
      rateLimit: args.rateLimit,
      taskDurationMs: args.taskMs,
      faults: args.faults,
      faultTimings: args.faultTimings,
      downloadUrlTtlSec: args.urlTtl,
    },
    bioaf: { port: args.bioafPort ?? 0 },
    genie: { port: args.geniePort ?? 0 },
    ot2: { runs: { port: args.ot2Port ?? 0 }, sessions: { port: args.ot2LegacyPort ?? 0 } },
  });
  const b = sim.benchling;
  const lines = [
    'Labwire lab simulator',
    `  Benchling tenant URL : ${b.url}`,
    `  API base             : ${b.apiBase}`,
    `  API key(s)           : ${b.apiKeys.join(', ')}   (HTTP Basic: key as user name, empty password)`,
    `  Rate limit           : ${args.rateLimit === false ? 'off' : `${args.rateLimit?.limit ?? 60} per ${(args.rateLimit?.windowMs ?? 30000) / 1000} s`}`,
    `  Faults               : ${args.faults ? describeFaults(args.faults) : 'none'}`,
    `  Run schema           : ${SEED.schemaId} ("${SEED.schemaName}")`,
    `  Output file config   : "${SEED.outputConfigName}"   Input file config: "${SEED.inputConfigName}"`,
    '  Seeded assay runs    :',
    ...SEED.runs.map((r) => `    ${r.id}  entry ${r.entryId}  input generator ${r.inputGeneratorId}`),
    '  Make processing fail : put FAIL in the blob name, or a line starting #FAIL in the file',
    `  bioAF URL            : ${sim.bioaf.url}   (API ${sim.bioaf.apiBase}, key ${DEFAULT_BIOAF_API_KEY})`,
    `  OT-2 robot (8.x runs): ${sim.ot2.runs.url}   OT-2 robot (4.x sessions): ${sim.ot2.sessions.url}`,
    `  Genie LabOS API URL  : ${sim.genie.apiBase}   (token ${DEFAULT_GENIE_TOKEN}; shaker ${GENIE_SEED.shaker}, reader ${GENIE_SEED.reader})`,
    'Ctrl-C to stop.',
  ];
  console.log(lines.join('\n'));
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\nsim: ${sig}, shutting down`);
    sim.close().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e) => {
  console.error('sim:', e instanceof Error ? e.message : e);
  process.exit(1);
});
