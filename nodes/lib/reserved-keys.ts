/**
 * Keys named `__proto__`, `constructor` or `prototype` in objects that come from a msg are refused
 * (never silently dropped or merged into a prototype). They can arrive two ways:
 *   - from JSON (`JSON.parse('{"__proto__": 1}')`, a JSON inject, an HTTP body): an own property
 *     named `__proto__`, which `obj[key] = v` style code would turn into a prototype change or drop;
 *   - from an object literal in a function node (`{ __proto__: {…} }`): no own key at all, the
 *     object's prototype is the given object — its fields would be inherited, invisible to
 *     `Object.entries`, and lost on the way out.
 * Both are reported as the key `__proto__` (or the own key's name) at its path in the msg.
 */
import { badInput, LabError } from './http/errors';

export const RESERVED_KEYS = ['__proto__', 'constructor', 'prototype'] as const;
const RESERVED = new Set<string>(RESERVED_KEYS);

/**
 * True when `o`'s prototype was set from an object literal (`{__proto__: {...}}`): a prototype
 * that is itself an ordinary object without its own `constructor`. Plain objects of any realm
 * (function nodes run in their own vm context), null-prototype objects, arrays, Buffers, Dates and
 * other class instances are not.
 */
function hasLiteralPrototype(o: object): boolean {
  const proto = Object.getPrototypeOf(o);
  if (proto === null || Object.getPrototypeOf(proto) === null) return false;
  return !Object.prototype.hasOwnProperty.call(proto, 'constructor');
}

function isWalkable(v: unknown): v is object {
  if (!v || typeof v !== 'object') return false;
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v);
  // Plain objects (any realm), null-prototype objects and literal-prototype objects.
  return proto === null || Object.getPrototypeOf(proto) === null || hasLiteralPrototype(v);
}

/** The first reserved key in `value` (walked deeply), as `{ path, key }`, or undefined. */
export function findReservedKey(value: unknown, where: string, depth = 0): { path: string; key: string } | undefined {
  if (depth > 64 || !isWalkable(value)) return undefined;
  if (!Array.isArray(value) && hasLiteralPrototype(value)) return { path: where, key: '__proto__' };
  for (const key of Object.keys(value)) {
    if (RESERVED.has(key)) return { path: where, key };
    const child = (value as Record<string, unknown>)[key];
    const found = findReservedKey(child, Array.isArray(value) ? `${where}[${key}]` : `${where}.${key}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Throws BAD_INPUT `common.reservedKey` naming the key and where it is, when `value` holds one. */
export function refuseReservedKeys(value: unknown, where: string): void {
  const found = findReservedKey(value, where);
  if (found) throw reservedKeyError(found.path, found.key);
}

export function reservedKeyError(where: string, key: string): LabError {
  return badInput('common.reservedKey', { key, where, reserved: RESERVED_KEYS.join(', ') });
}

export function isReservedKey(key: string): boolean {
  return RESERVED.has(key);
}
