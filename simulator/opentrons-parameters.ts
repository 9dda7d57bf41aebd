// Runtime parameters as the robot-server v8.1.0 sees them, for the Opentrons simulator: the
// declarations read from a protocol's `add_parameters` (parameters.add_int / add_float / add_bool /
// add_str / add_csv_file), the analysis's `runTimeParameters` views (NumberParameter,
// EnumParameter, BooleanParameter, CSVParameter in the v8.1.0 spec) and the checks the robot
// applies to the values a client sends (reference §2.3, §2.9).

export interface SimParamDecl {
  kind: 'int' | 'float' | 'bool' | 'str' | 'csv_file';
  variableName: string;
  displayName: string;
  default?: number | boolean | string;
  min?: number;
  max?: number;
  choices?: Array<{ displayName: string; value: number | string }>;
}

function literal(text: string | undefined): number | boolean | string | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === 'True') return true;
  if (t === 'False') return false;
  const q = /^(['"])(.*)\1$/.exec(t);
  if (q) return q[2];
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** The parameters a Python protocol declares; [] when it declares none (or has no add_parameters). */
export function declaredParameters(text: string): SimParamDecl[] {
  if (!/def\s+add_parameters\s*\(/.test(text)) return [];
  const out: SimParamDecl[] = [];
  // One call per line (or over several lines), its arguments up to the `)` that ends the line.
  for (const m of text.matchAll(/\.add_(int|float|bool|str|csv_file)\s*\(([\s\S]*?)\)\s*$/gm)) {
    const args = m[2];
    const arg = (name: string) => new RegExp(`\\b${name}\\s*=\\s*("[^"]*"|'[^']*'|[^,\\]\\n]+)`).exec(args)?.[1];
    const variableName = String(literal(arg('variable_name')) ?? '');
    if (!variableName) continue;
    const choicesText = /\bchoices\s*=\s*\[([^\]]*)\]/.exec(args)?.[1];
    const choices = choicesText
      ? [...choicesText.matchAll(/\{([^}]*)\}/g)].map((c) => ({
          displayName: String(literal(/["']display_name["']\s*:\s*("[^"]*"|'[^']*')/.exec(c[1])?.[1]) ?? ''),
          value: literal(/["']value["']\s*:\s*("[^"]*"|'[^']*'|[-\d.]+)/.exec(c[1])?.[1]) as number | string,
        }))
      : undefined;
    out.push({
      kind: m[1] as SimParamDecl['kind'],
      variableName,
      displayName: String(literal(arg('display_name')) ?? variableName),
      default: literal(arg('default')),
      min: literal(arg('minimum')) as number | undefined,
      max: literal(arg('maximum')) as number | undefined,
      choices,
    });
  }
  return out;
}

/** The robot's words for a value it refuses (ParameterValueError), or undefined when it is fine. */
export function valueProblem(d: SimParamDecl, v: unknown): string | undefined {
  if (d.kind === 'csv_file') return `Parameter ${d.variableName} is a CSV file parameter; send its file id in runTimeParameterFiles.`;
  if (d.kind === 'bool') return typeof v === 'boolean' ? undefined : `Parameter ${d.variableName} must be a boolean.`;
  if (d.kind === 'str' && typeof v !== 'string') return `Parameter ${d.variableName} must be a string.`;
  if (d.kind === 'int' && !(typeof v === 'number' && Number.isInteger(v))) return `Parameter ${d.variableName} must be an integer.`;
  if (d.kind === 'float' && typeof v !== 'number') return `Parameter ${d.variableName} must be a number.`;
  if (d.choices && !d.choices.some((c) => c.value === v)) return `Parameter must be set to one of the allowed values of ${d.choices.map((c) => c.value).join(', ')}.`;
  if (typeof v === 'number' && d.min !== undefined && d.max !== undefined && (v < d.min || v > d.max)) return `Parameter must be between ${d.min} and ${d.max} inclusive.`;
  return undefined;
}

/** One declaration as the analysis / run lists it (spec: NumberParameter | EnumParameter | BooleanParameter | CSVParameter). */
export function parameterView(d: SimParamDecl, value: unknown, file?: { id: string; name: string }): Record<string, unknown> {
  const base = { displayName: d.displayName, variableName: d.variableName };
  if (d.kind === 'csv_file') return { ...base, type: 'csv_file', ...(file ? { file } : {}) };
  const v = value === undefined ? d.default : value;
  if (d.kind === 'bool') return { ...base, type: 'bool', value: v, default: d.default };
  if (d.choices) return { ...base, type: d.kind, choices: d.choices, value: v, default: d.default };
  return { ...base, type: d.kind, min: d.min ?? 0, max: d.max ?? 0, value: v, default: d.default };
}
