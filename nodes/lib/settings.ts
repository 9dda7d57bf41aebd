/**
 * The numeric settings of a node or config node, read once at deploy: seconds, hours, days, whole
 * numbers and ports. Each reader returns the value (the default when the setting is empty) and,
 * when the setting is unusable — negative, zero where zero means nothing, not a number, out of
 * range, an unset `${VAR}` — collects a BAD_INPUT error naming the setting instead of throwing, so
 * the node still constructs. `handleInput` (node-red.ts) then shows the problem as a red ring and
 * fails every message with it (Catch-able, with the msg); `configNode` reports a config node's
 * problem to the nodes using it.
 *
 * `${VAR}`: Node-RED substitutes a value that is exactly `${VAR}` before the node is built, and
 * leaves it as it is when the variable is unset; any `${VAR}` still in the value is expanded here
 * (flow, then process environment), so the number is checked after substitution either way.
 */
import type { Node, NodeAPI } from 'node-red';
import { badInput, LabError } from './http/errors';
import { messageRef, type MessageKey } from './messages';

export interface NumberRule {
  /** The value when the setting is empty. */
  default: number;
  /** The smallest value allowed (inclusive), default 0. */
  min?: number;
  /** The value must be greater than `min` (e.g. "> 0": zero means nothing). */
  above?: boolean;
  /** The largest value allowed (inclusive). */
  max?: number;
}

/** A config node whose settings were read with `Settings`: its problem, if any. */
export interface CheckedConfigNode {
  settingsProblem?: () => LabError | undefined;
  /** Something the nodes using it should show (yellow) although they work, e.g. a fallback in use. */
  warning?: () => Error | undefined;
}

type Unit = 'seconds' | 'hours' | 'days';
const UNIT_MS: Record<Unit, number> = { seconds: 1000, hours: 3600_000, days: 24 * 3600_000 };
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export class Settings {
  private readonly problems: LabError[] = [];
  private readonly configs: Array<{ id: string | undefined; type: string }> = [];

  constructor(
    private readonly RED: NodeAPI,
    private readonly node: Node,
  ) {}

  /** A duration in seconds, as milliseconds. */
  seconds(label: string, value: unknown, rule: NumberRule): number {
    return this.duration('seconds', label, value, rule);
  }

  /** A duration in hours, as milliseconds. */
  hours(label: string, value: unknown, rule: NumberRule): number {
    return this.duration('hours', label, value, rule);
  }

  /** A duration in days, as milliseconds. */
  days(label: string, value: unknown, rule: NumberRule): number {
    return this.duration('days', label, value, rule);
  }

  /** A whole number (a count, a limit, a size) ≥ `min` (default 1), ≤ `max` if given. */
  integer(label: string, value: unknown, rule: NumberRule): number {
    const min = rule.min ?? 1;
    const rangeRule = rule.max !== undefined ? messageRef('common.rule.integerRange', { min, max: rule.max }) : messageRef('common.rule.integerAtLeast', { min });
    const n = this.number(label, value, rule.default, rangeRule);
    if (n === undefined) return rule.default;
    if (!Number.isInteger(n) || n < min || (rule.max !== undefined && n > rule.max)) return this.fail(label, value, rangeRule, rule.default);
    return n;
  }

  /** A TCP port, 1–65535. */
  port(label: string, value: unknown, defaultPort: number): number {
    return this.integer(label, value, { default: defaultPort, min: 1, max: 65535 });
  }

  /** A config node this node uses: its settings problem becomes this node's (at deploy and per message). */
  uses(id: string | undefined, type: string): this {
    this.configs.push({ id, type });
    return this;
  }

  /** A setting's text with every `${VAR}` expanded; an unset variable is a problem (and ''). */
  env(label: string, value: string | undefined): string {
    try {
      return expandSetting(this.RED, this.node, label, value);
    } catch (err) {
      this.problems.push(err as LabError);
      return '';
    }
  }

  /** Adds a problem found by the node itself (e.g. two settings that contradict each other). */
  add(problem: LabError): void {
    this.problems.push(problem);
  }

  /** A warning of a config node this node uses (the first), for its status after a success. */
  warning(): Error | undefined {
    for (const c of this.configs) {
      const cfg = c.id ? (this.RED.nodes.getNode(c.id) as unknown as CheckedConfigNode | null) : null;
      const w = cfg?.warning?.();
      if (w) return w;
    }
    return undefined;
  }

  /** The node's own problems, then those of the config nodes it uses; undefined when all is well. */
  problem(): LabError | undefined {
    const all = [...this.problems];
    for (const c of this.configs) {
      const cfg = c.id ? (this.RED.nodes.getNode(c.id) as unknown as (Node & CheckedConfigNode) | null) : null;
      const p = cfg?.settingsProblem?.();
      if (p && cfg) all.push(configProblem(cfg, c.type, p));
    }
    if (all.length <= 1) return all[0];
    return badInput('common.settingsProblems', { count: all.length, errors: all.map((e) => messageRef(e.key, e.vars)) });
  }

  /** Only the node's own problems (for a config node to hand to the nodes using it). */
  ownProblem(): LabError | undefined {
    if (this.problems.length <= 1) return this.problems[0];
    return badInput('common.settingsProblems', { count: this.problems.length, errors: this.problems.map((e) => messageRef(e.key, e.vars)) });
  }

  private duration(unit: Unit, label: string, value: unknown, rule: NumberRule): number {
    const min = rule.min ?? 0;
    const ruleRef = messageRef(`common.rule.${unit}${rule.above ? 'Above' : 'AtLeast'}` as MessageKey, { min });
    const n = this.number(label, value, rule.default, ruleRef);
    const out = (v: number) => Math.round(v * UNIT_MS[unit]);
    if (n === undefined) return out(rule.default);
    if (rule.above ? n <= min : n < min) return out(this.fail(label, value, ruleRef, rule.default));
    if (rule.max !== undefined && n > rule.max) {
      return out(this.fail(label, value, messageRef(`common.rule.${unit}AtMost` as MessageKey, { max: rule.max }), rule.default));
    }
    return out(n);
  }

  /** The setting as a finite number; undefined when empty (the default applies) or unusable (collected). */
  private number(label: string, value: unknown, fallback: number, rule: ReturnType<typeof messageRef>): number | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'number') {
      if (Number.isFinite(value)) return value;
      this.fail(label, value, rule, fallback);
      return undefined;
    }
    let text = String(value).trim();
    if (text.includes('${')) {
      try {
        text = expandSetting(this.RED, this.node, label, text);
      } catch (err) {
        this.problems.push(err as LabError);
        return undefined;
      }
    }
    if (text === '') return undefined;
    if (!NUMBER.test(text)) {
      this.fail(label, value, rule, fallback);
      return undefined;
    }
    return Number(text);
  }

  private fail(label: string, value: unknown, rule: ReturnType<typeof messageRef>, fallback: number): number {
    const shown = typeof value === 'string' && value.includes('${') ? `${value} = ${expandQuietly(this.RED, this.node, value)}` : String(value);
    this.problems.push(badInput('common.badNumber', { setting: label, rule, value: shown }));
    return fallback;
  }
}

/** A config node's settings problem, told by a node that uses it (naming the config node). */
export function configProblem(cfg: Node, type: string, problem: LabError): LabError {
  return badInput('common.configNodeSettings', { error: problem, type, node: cfg.name || cfg.id });
}

/** `${VAR}` anywhere in a setting, from the flow's and the process's environment. */
export function expandSetting(RED: NodeAPI, node: Node, label: string, value: string | undefined): string {
  return (value ?? '').trim().replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
    const v = RED.util.getSetting(node, name.trim());
    if (v === undefined || v === null || v === '') throw badInput('common.envNotSet', { setting: label, name });
    return String(v);
  });
}

function expandQuietly(RED: NodeAPI, node: Node, value: string): string {
  try {
    return expandSetting(RED, node, '', value);
  } catch {
    return '';
  }
}
