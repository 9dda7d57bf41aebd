/**
 * The pack's message catalogues, read without Node-RED. Every error the pack raises is a key in
 * `locales/<lang>/lab-messages.json` plus its values; the English text comes from the en-US
 * catalogue, so the clients (usable without Node-RED) speak English and the nodes translate the
 * same key into the runtime's language. English lives in one place: the en-US catalogues.
 */
import * as fs from 'fs';
import * as path from 'path';
// Type only: the keys of the shared catalogue, so an error with an unknown key does not compile.
import type SharedCatalogue from '../../locales/en-US/lab-messages.json';

/** The catalogue the `lab-messages` plugin registers with Node-RED (one namespace for shared texts). */
export const SHARED_CATALOGUE = 'lab-messages';

type Leaves<T, P extends string = ''> = {
  [K in keyof T & string]: T[K] extends string ? `${P}${K}` : Leaves<T[K], `${P}${K}.`>;
}[keyof T & string];

/** An error's stable message id, e.g. `http.timeout` (under `lab-messages.errors`). */
export type MessageKey = Leaves<(typeof SharedCatalogue)['lab-messages']['errors']>;
/** A status text the shared layer shows, e.g. `waitRateLimit` (under `lab-messages.status`). */
export type SharedStatusKey = Leaves<(typeof SharedCatalogue)['lab-messages']['status']>;

/** A translatable part of a message: an error message id and its values. */
export interface MessageRef {
  key: MessageKey;
  vars?: MessageVars;
}
/**
 * The values a message names. A value that is itself a message (or a list of them, e.g. one per
 * refused field), or an error the message wraps, is told in the same language as the message
 * around it; a list reads "a; b".
 */
export type MessageVars = Record<string, string | number | MessageRef | MessageRef[] | Error>;

/** A LabError (checked by shape: errors.ts builds on this file). */
function isMessageError(e: Error): e is Error & Required<MessageRef> {
  return typeof (e as Partial<MessageRef>).key === 'string' && typeof (e as Partial<MessageRef>).vars === 'object';
}

export const messageRef = (key: MessageKey, vars?: MessageVars): MessageRef => ({ key, vars });

/** The values as text: nested messages told by `tell` (which knows the language). */
export function flattenVars(vars: MessageVars | undefined, tell: (ref: MessageRef) => string): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(vars ?? {})) {
    if (v instanceof Error) out[k] = isMessageError(v) ? tell({ key: v.key, vars: v.vars }) : v.message;
    else out[k] = Array.isArray(v) ? v.map(tell).join('; ') : typeof v === 'object' && v !== null ? tell(v) : v;
  }
  return out;
}

// The build puts the catalogues next to the compiled nodes (dist/nodes/locales), where Node-RED
// looks for them; this file runs from dist/nodes/lib.
const LOCALES = path.join(__dirname, '..', 'locales');
const english = new Map<string, Record<string, unknown>>();

function englishCatalogue(file: string): Record<string, unknown> {
  let cat = english.get(file);
  if (!cat) {
    try {
      cat = JSON.parse(fs.readFileSync(path.join(LOCALES, 'en-US', `${file}.json`), 'utf8')) as Record<string, unknown>;
    } catch {
      cat = {};
    }
    english.set(file, cat);
  }
  return cat;
}

/** Fills `__name__` placeholders (Node-RED's i18n syntax); an unknown placeholder stays visible. */
export function fillPlaceholders(template: string, vars: Record<string, string | number> = {}): string {
  return template.replace(/__(\w+)__/g, (m, v: string) => (v in vars ? String(vars[v]) : m));
}

/**
 * English text of `key` (dotted, from the top of the catalogue) in `locales/en-US/<file>.json`;
 * the key itself when it is missing, so a missing text shows rather than vanishes.
 */
export function englishText(file: string, key: string, vars?: MessageVars): string {
  let node: unknown = englishCatalogue(file);
  for (const part of key.split('.')) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined;
  return typeof node === 'string' ? fillPlaceholders(node, flattenVars(vars, (r) => errorText(r.key, r.vars))) : key;
}

/** The English text of an error message id. */
export function errorText(key: MessageKey, vars?: MessageVars): string {
  return englishText(SHARED_CATALOGUE, `${SHARED_CATALOGUE}.errors.${key}`, vars);
}
