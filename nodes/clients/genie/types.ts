/**
 * Genie LabOS Public API objects, as far as they are known. Source: the vendor's "LabOS REST API"
 * and "LabOS Instrument API" pages (see ../shared/reference/bioaf-genie-api.md §2). Everything
 * marked UNCONFIRMED there is typed loosely here (optional fields, unknown extras kept).
 */

/** The parameter types the Instrument API documents. */
export type GenieParameterType = 'number' | 'string' | 'volume' | 'time' | 'file' | 'json';

export interface GenieParameter {
  /** Internal unique id; parameters can be referenced by id or by name. */
  id: string;
  name: string;
  type: GenieParameterType | string;
  /** Allowed values (an enum). */
  options?: unknown[];
  /** number / volume / time: value bounds. string: length bounds. */
  min?: number | string;
  max?: number | string;
  /** UNCONFIRMED: not documented; honoured when present (see schema.ts). */
  required?: boolean;
  optional?: boolean;
  default?: unknown;
  [extra: string]: unknown;
}

export interface GenieAction {
  /** The action's name (also its id in `…/actions/{name}`). */
  action: string;
  parameters: GenieParameter[];
  [extra: string]: unknown;
}

/** UNCONFIRMED beyond the id: name / type / status are what the list is expected to show. */
export interface GenieInstrument {
  /** The uid used in paths (24-hex ObjectId in the docs' example). */
  uid: string;
  name?: string;
  [extra: string]: unknown;
}

/** UNCONFIRMED (brief only): `running | success | failure`. */
export type GenieCommandStatus = 'running' | 'success' | 'failure' | string;

export interface GenieCommandValue {
  parameterId: string;
  value: unknown;
}

/** UNCONFIRMED (brief only): the Command object. */
export interface GenieCommand {
  id: string;
  objectId?: string;
  createdBy?: string;
  createdAt?: string;
  updatedAt?: string;
  payload?: unknown;
  values?: GenieCommandValue[];
  status: GenieCommandStatus;
  output?: unknown;
  message?: unknown;
  error?: unknown;
  results?: unknown;
  [extra: string]: unknown;
}
