// OpenAPI 3.0 contract checker for the Benchling API, built on ajv v8.
//
// The spec is found through ONE setting: env LABWIRE_SHARED_DIR (default: <repo root>/../shared),
// file <shared>/specs/benchling-openapi.yaml (the full spec; the trimmed
// benchling-lab-automation.yaml is used only when the full one is absent).
//
// OpenAPI 3.0 → JSON Schema: `nullable: true` becomes anyOf [null, schema]; `$ref`s are resolved
// inside one registered document; unknown formats are tolerated; `discriminator`, `example` and
// other OpenAPI-only keywords are ignored (strict: false). Validators are compiled lazily per
// operation and cached.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ValidateFunction, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';

export interface Violation {
  where: 'route' | 'request' | 'response';
  operationId?: string;
  message: string;
}

/** Structurally compatible with the simulator's SimExchange. */
export interface ContractExchange {
  method: string;
  path: string;
  query?: Record<string, string>;
  requestContentType?: string;
  requestBody?: unknown;
  requestBodySkipped?: string;
  /** Raw length of the request body in bytes, when the recorder knows it. */
  requestBodyBytes?: number;
  status: number;
  responseContentType?: string;
  responseBody?: unknown;
}

export interface OperationMatch {
  operationId: string;
  method: string;
  template: string;
  pathParams: Record<string, string>;
}

export interface BenchlingContract {
  specPath: string;
  basePath: string;
  findOperation(method: string, concretePath: string): OperationMatch | null;
  checkRequest(req: {
    method: string;
    path: string;
    query?: Record<string, string>;
    body?: unknown;
    contentType?: string;
    /** Raw length of the request body when known (a body that was not parsed still counts). */
    bodyBytes?: number;
  }): Violation[];
  checkResponse(
    req: { method: string; path: string },
    res: { status: number; body?: unknown; contentType?: string },
    opts?: { requestInvalid?: boolean },
  ): Violation[];
  /** Request and response together; undeclared 400/404/422 answers are accepted when the request itself was invalid. */
  checkExchange(ex: ContractExchange): Violation[];
  /** Validate a value against components.schemas[name]; returns readable error lines. */
  validateSchema(name: string, value: unknown): string[];
}

// ---------------------------------------------------------------------------------------------
// locating the spec
// ---------------------------------------------------------------------------------------------

function findRepoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === '@labwire/node-red-lab-automation') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..', '..');
    dir = up;
  }
}

/** The shared folder: env LABWIRE_SHARED_DIR, default <repo root>/../shared. Read at call time. */
export function sharedDir(): string {
  return process.env.LABWIRE_SHARED_DIR || path.resolve(findRepoRoot(), '..', 'shared');
}

/** Path of the spec file to use, or null when neither spec file exists. */
export function benchlingSpecPath(): string | null {
  const specs = path.join(sharedDir(), 'specs');
  for (const f of ['benchling-openapi.yaml', 'benchling-lab-automation.yaml']) {
    const p = path.join(specs, f);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** '' when the spec is present, else a reason to print with test(name, { skip: reason }). */
export function contractSkipReason(): string {
  return benchlingSpecPath()
    ? ''
    : `Benchling OpenAPI spec not found at ${path.join(sharedDir(), 'specs', 'benchling-openapi.yaml')} ` +
        '(set LABWIRE_SHARED_DIR to the folder that holds specs/benchling-openapi.yaml)';
}

/** Skip reason computed when this module was loaded ('' = spec present). */
export const skipReason: string = contractSkipReason();

const cache = new Map<string, BenchlingContract>();

/** Loads (and caches per spec path) the contract; null when the spec file is absent. */
export function loadBenchlingContract(): BenchlingContract | null {
  const p = benchlingSpecPath();
  if (!p) return null;
  let c = cache.get(p);
  if (!c) {
    c = buildContract(p, parseYaml(fs.readFileSync(p, 'utf8'), { maxAliasCount: -1 }) as Spec);
    cache.set(p, c);
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI → JSON Schema
// ---------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;
interface Spec {
  servers?: Array<{ url: string }>;
  paths: Record<string, Json>;
  components?: { schemas?: Record<string, Json>; parameters?: Record<string, Json>; responses?: Record<string, Json>; requestBodies?: Record<string, Json> };
}

const DOC_ID = 'benchling-openapi';
/** Keys whose values are data, not schemas: never rewritten. */
const DATA_KEYS = new Set(['example', 'examples', 'default', 'enum', 'const', 'x-examples']);

function convertSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(convertSchema);
  if (!s || typeof s !== 'object') return s;
  const src = s as Json;
  const out: Json = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === 'nullable') continue;
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/')) out[k] = DOC_ID + v;
    else if (DATA_KEYS.has(k)) out[k] = v;
    else if (k === 'properties' && v && typeof v === 'object') {
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([pk, pv]) => [pk, convertSchema(pv)]));
    } else out[k] = convertSchema(v);
  }
  if (src.nullable === true) {
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return { anyOf: [{ type: 'null' }, out] };
  }
  return out;
}

function collectFormats(x: unknown, into: Set<string>): void {
  if (Array.isArray(x)) x.forEach((y) => collectFormats(y, into));
  else if (x && typeof x === 'object') {
    for (const [k, v] of Object.entries(x as Json)) {
      if (k === 'format' && typeof v === 'string') into.add(v);
      else if (!DATA_KEYS.has(k)) collectFormats(v, into);
    }
  }
}

const KNOWN_FORMATS: Record<string, RegExp | ((s: string) => boolean)> = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  'date-time': /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  uri: (s) => {
    try {
      new URL(s);
      return true;
    } catch {
      return false;
    }
  },
  byte: /^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/,
};

function fmtErrors(errors: ErrorObject[] | null | undefined, prefix: string): string[] {
  if (!errors) return [];
  // drop the noise of anyOf/oneOf wrappers when a more specific error exists
  const specific = errors.filter((e) => !['anyOf', 'oneOf', 'allOf', 'if'].includes(e.keyword));
  const list = specific.length ? specific : errors;
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of list) {
    let extra = '';
    if (e.keyword === 'additionalProperties') extra = ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})`;
    else if (e.keyword === 'enum') extra = ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})`;
    const line = `${prefix}${e.instancePath || ''} ${e.message ?? e.keyword}${extra}`;
    if (!seen.has(line)) {
      seen.add(line);
      out.push(line);
    }
    if (out.length >= 12) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// the contract
// ---------------------------------------------------------------------------------------------

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/**
 * Statuses accepted on ANY operation although its `responses` do not list them (the body must
 * still be a BaseError envelope when it is JSON). Benchling's spec documents per operation only
 * the business answers; these come from layers in front of every operation:
 * - 401: the global `security` (API key or OAuth) applies to every operation and Benchling's
 *   authentication docs say unauthenticated requests get 401 (reference §6). A wrong key on
 *   `GET /tasks/{id}` (spec: 200, 404) answering 401 is what every real API does; answering 404
 *   or 200 would be the unsafe choice (it would hide a bad key behind "no such task").
 * - 429: the documented rate limit (reference §7) applies to every operation; the spec lists it
 *   nowhere.
 * - 5xx: any server or gateway can fail (the HTML 502 of a load balancer included).
 * Nothing else is generic: 400/404/422 are excused only when the request itself broke the
 * contract (checkExchange), and 403/405/413/415 must be declared to pass.
 */
export const GENERIC_STATUSES: ReadonlyArray<number | '5XX'> = [401, 429, '5XX'];
export function isGenericStatus(status: number): boolean {
  return GENERIC_STATUSES.includes(status) || (status >= 500 && status <= 599);
}

interface CompiledPath {
  template: string;
  re: RegExp;
  paramNames: string[];
  literalLength: number;
  item: Json;
}

function buildContract(specPath: string, spec: Spec): BenchlingContract {
  const basePath = (spec.servers?.[0]?.url ?? '/api/v2').replace(/\/$/, '');
  const formats = new Set<string>();
  collectFormats(spec.components?.schemas, formats);
  collectFormats(spec.paths, formats);
  const ajvFormats: Record<string, RegExp | ((s: string) => boolean) | true> = {};
  for (const f of formats) ajvFormats[f] = KNOWN_FORMATS[f] ?? true;
  for (const [f, v] of Object.entries(KNOWN_FORMATS)) ajvFormats[f] = v;
  const ajv = new Ajv({
    strict: false,
    allErrors: true,
    validateSchema: false,
    discriminator: false,
    formats: ajvFormats,
    logger: false,
  });
  const schemas: Json = {};
  for (const [name, s] of Object.entries(spec.components?.schemas ?? {})) schemas[name] = convertSchema(s);
  ajv.addSchema({ $id: DOC_ID, components: { schemas } });

  const deref = (x: unknown): Json | undefined => {
    let cur = x as Json | undefined;
    for (let i = 0; i < 10 && cur && typeof cur.$ref === 'string'; i++) {
      const parts = (cur.$ref as string).replace(/^#\//, '').split('/');
      let node: unknown = spec;
      for (const p of parts) node = (node as Json | undefined)?.[p.replace(/~1/g, '/').replace(/~0/g, '~')];
      cur = node as Json | undefined;
    }
    return cur;
  };

  const paths: CompiledPath[] = Object.entries(spec.paths).map(([template, item]) => {
    const paramNames: string[] = [];
    let literalLength = 0;
    const re = new RegExp(
      '^' +
        template
          .split(/(\{[^}]+\})/)
          .map((piece) => {
            if (piece.startsWith('{')) {
              paramNames.push(piece.slice(1, -1));
              return '([^/]+)';
            }
            literalLength += piece.length;
            return piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          })
          .join('') +
        '$',
    );
    return { template, re, paramNames, literalLength, item };
  });
  // most specific first: /blobs/{id}:complete-upload before /blobs/{id}
  paths.sort((a, b) => b.literalLength - a.literalLength);

  const compiled = new Map<string, ValidateFunction>();
  const compile = (key: string, schema: unknown): ValidateFunction => {
    let v = compiled.get(key);
    if (!v) {
      v = ajv.compile(convertSchema(schema) as Json);
      compiled.set(key, v);
    }
    return v;
  };

  const matchPath = (concretePath: string): { cp: CompiledPath; params: Record<string, string> } | null => {
    if (!concretePath.startsWith(basePath + '/') && !concretePath.startsWith(basePath + ':')) return null;
    const sub = concretePath.slice(basePath.length);
    for (const cp of paths) {
      const m = cp.re.exec(sub);
      if (m) {
        const params: Record<string, string> = {};
        cp.paramNames.forEach((n, i) => {
          try {
            params[n] = decodeURIComponent(m[i + 1]);
          } catch {
            params[n] = m[i + 1];
          }
        });
        return { cp, params };
      }
    }
    return null;
  };

  type OpLookup = { error: string } | { op: Json; operationId: string; mp: { cp: CompiledPath; params: Record<string, string> } };
  const operationOf = (method: string, concretePath: string): OpLookup => {
    const mp = matchPath(concretePath);
    if (!mp) return { error: `no path in the spec matches ${concretePath} (base path ${basePath})` };
    const op = mp.cp.item[method.toLowerCase()] as Json | undefined;
    if (!op || !METHODS.includes(method.toLowerCase())) {
      const allowed = METHODS.filter((m) => mp.cp.item[m]).map((m) => m.toUpperCase());
      return { error: `${method.toUpperCase()} is not defined for ${mp.cp.template} (spec allows ${allowed.join(', ')})` };
    }
    const operationId = (op.operationId as string | undefined) ?? `${method.toLowerCase()} ${mp.cp.template}`;
    return { op, operationId, mp };
  };

  const findOperation = (method: string, concretePath: string): OperationMatch | null => {
    const r = operationOf(method, concretePath);
    if ('error' in r) return null;
    return { operationId: r.operationId, method: method.toUpperCase(), template: r.mp.cp.template, pathParams: r.mp.params };
  };

  const coerce = (raw: string, schema: Json | undefined): unknown => {
    const t = schema?.type;
    if (t === 'integer' || t === 'number') return raw.trim() !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
    if (t === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
    if (t === 'array') return raw.split(',');
    return raw;
  };

  const checkRequest: BenchlingContract['checkRequest'] = (req) => {
    const r = operationOf(req.method, req.path);
    if ('error' in r) return [{ where: 'route', message: r.error }];
    const { op, operationId, mp } = r;
    const out: Violation[] = [];
    const push = (message: string) => out.push({ where: 'request', operationId, message });
    const params = [...((mp.cp.item.parameters as unknown[]) ?? []), ...((op.parameters as unknown[]) ?? [])]
      .map(deref)
      .filter((p): p is Json => !!p);
    const query = req.query ?? {};
    const declaredQuery = new Set<string>();
    for (const p of params) {
      const name = p.name as string;
      const where = p.in as string;
      if (where !== 'query' && where !== 'path') continue;
      const raw = where === 'query' ? query[name] : mp.params[name];
      if (where === 'query') declaredQuery.add(name);
      if (raw === undefined) {
        if (p.required) push(`missing required ${where} parameter "${name}"`);
        continue;
      }
      if (p.schema) {
        const v = compile(`${operationId}:param:${where}:${name}`, p.schema);
        if (!v(coerce(raw, p.schema as Json))) for (const e of fmtErrors(v.errors, `${where} parameter "${name}"`)) push(e);
      }
    }
    for (const k of Object.keys(query)) if (!declaredQuery.has(k)) push(`query parameter "${k}" is not declared for ${operationId}`);
    const rb = deref(op.requestBody);
    if (!rb) {
      // The operation declares no requestBody: ANY body is a violation, `{}` included, and so is a
      // Content-Type header with an empty body (a validating proxy in front of Benchling answers
      // such requests 415). An earlier version treated `{}` as "no body" and so let the abort-upload
      // `{}` of blob-upload.ts through.
      const ct = (req.contentType ?? '').split(';')[0].trim();
      if (req.body !== undefined) push(`${operationId} takes no request body, but one was sent (${JSON.stringify(req.body).slice(0, 60)})`);
      else if ((req.bodyBytes ?? 0) > 0) push(`${operationId} takes no request body, but ${req.bodyBytes} bytes were sent`);
      if (ct) push(`${operationId} takes no request body, but the request has Content-Type ${ct}`);
      return out;
    }
    const content = (rb.content ?? {}) as Record<string, Json>;
    const ct = (req.contentType ?? '').split(';')[0].trim().toLowerCase() || Object.keys(content)[0];
    const media = content[ct];
    if (req.body === undefined) {
      if (rb.required) push('missing required request body');
      return out;
    }
    if (!media) {
      push(`request content type ${ct} is not declared (spec: ${Object.keys(content).join(', ')})`);
      return out;
    }
    if (media.schema) {
      const v = compile(`${operationId}:req:${ct}`, media.schema);
      if (!v(req.body)) for (const e of fmtErrors(v.errors, 'body')) push(e);
    }
    return out;
  };

  const checkResponse: BenchlingContract['checkResponse'] = (req, res, opts = {}) => {
    const r = operationOf(req.method, req.path);
    if ('error' in r) return [{ where: 'route', message: r.error }];
    const { op, operationId } = r;
    const out: Violation[] = [];
    const push = (message: string) => out.push({ where: 'response', operationId, message });
    const responses = (op.responses ?? {}) as Record<string, unknown>;
    const code = String(res.status);
    const declared = deref(responses[code] ?? responses[`${code[0]}XX`] ?? responses[`${code[0]}xx`] ?? responses.default);
    const ct = (res.contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
    if (!declared) {
      const generic = isGenericStatus(res.status);
      const excused = opts.requestInvalid && [400, 404, 422].includes(res.status);
      if (!generic && !excused) {
        push(`status ${code} is not declared for ${operationId} (declared: ${Object.keys(responses).join(', ')})`);
        return out;
      }
      if (ct === 'application/json' && res.body !== undefined) {
        const v = compile('generic-error', { type: 'object', required: ['error'], properties: { error: { $ref: '#/components/schemas/BaseError' } } });
        if (!v(res.body)) for (const e of fmtErrors(v.errors, `${code} body`)) push(e);
      }
      return out;
    }
    const content = (declared.content ?? {}) as Record<string, Json>;
    if (Object.keys(content).length === 0) return out; // e.g. 302: nothing to check
    const media = content[ct];
    if (!media) {
      push(`status ${code}: content type ${ct} is not declared (spec: ${Object.keys(content).join(', ')})`);
      return out;
    }
    if (media.schema) {
      if (res.body === undefined) {
        push(`status ${code}: a ${ct} body is declared but none was given`);
        return out;
      }
      const v = compile(`${operationId}:res:${code}:${ct}`, media.schema);
      if (!v(res.body)) for (const e of fmtErrors(v.errors, `${code} body`)) push(e);
    }
    return out;
  };

  const checkExchange: BenchlingContract['checkExchange'] = (ex) => {
    // A fault-injected exchange never read its request: nothing is known about the body.
    const faulted = ex.requestBodySkipped === 'fault-injected';
    const reqV = ex.requestBodySkipped
      ? checkRequest({ method: ex.method, path: ex.path, query: ex.query, contentType: faulted ? undefined : ex.requestContentType, bodyBytes: faulted ? undefined : ex.requestBodyBytes })
      : checkRequest({ method: ex.method, path: ex.path, query: ex.query, body: ex.requestBody, contentType: ex.requestContentType, bodyBytes: ex.requestBodyBytes });
    if (reqV.some((v) => v.where === 'route')) return reqV;
    const resV = checkResponse(
      { method: ex.method, path: ex.path },
      { status: ex.status, body: ex.responseBody, contentType: ex.responseContentType },
      { requestInvalid: reqV.length > 0 },
    );
    return [...reqV, ...resV];
  };

  const validateSchema = (name: string, value: unknown): string[] => {
    if (!spec.components?.schemas?.[name]) return [`no schema components.schemas.${name}`];
    const v = compile(`schema:${name}`, { $ref: `#/components/schemas/${name}` });
    return v(value) ? [] : fmtErrors(v.errors, name);
  };

  return { specPath, basePath, findOperation, checkRequest, checkResponse, checkExchange, validateSchema };
}

export function formatViolations(vs: Array<Violation & { exchange?: string }>): string {
  return vs.map((v) => `[${v.where}${v.operationId ? ' ' + v.operationId : ''}] ${v.exchange ? v.exchange + ': ' : ''}${v.message}`).join('\n');
}
