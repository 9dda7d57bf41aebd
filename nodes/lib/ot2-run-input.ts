/**
 * What `ot2-run` reads from its settings and an input message: the protocol, support files,
 * runtime parameter values, CSV parameter files (`msg.runTimeParameterFiles`), labware offsets
 * (`msg.labwareOffsets`, or those of the most recent run of the protocol) and *keep* — checked into
 * the runner's request, with a clear error for bad input.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { RunRequest } from '../clients/opentrons/runner';
import type { FileSource } from '../clients/opentrons/multipart';
import { labwareOffsets } from '../clients/opentrons/offsets';
import { parameterFileSources } from '../clients/opentrons/parameters';
import { badInput } from './http/errors';
import { evaluateProperty, type Msg } from './node-red';

export interface Ot2RunDef extends NodeDef {
  robot: string;
  protocol?: string;
  protocolType?: string;
  protocolName?: string;
  protocolNameType?: string;
  supportFiles?: string;
  supportFilesType?: string;
  parameters?: string;
  parametersType?: string;
  parameterFiles?: string;
  parameterFilesType?: string;
  offsets?: string;
  offsetsType?: string;
  recentOffsets?: boolean;
  keep?: boolean;
  replaceExisting?: boolean;
  onClose?: 'leave' | 'stop';
  interval?: string | number;
  loadTimeout?: string | number;
  runTimeout?: string | number;
  offlineTimeout?: string | number;
  readSteps?: boolean;
}

/** The runner's request for this message. */
export async function readRunRequest(RED: NodeAPI, node: Node, def: Ot2RunDef, msg: Msg): Promise<RunRequest> {
  /** A typed-input setting's value; undefined when it is off ('none') or empty. */
  async function optional(value: string | undefined, type: string | undefined, fallback: string, msg: Msg): Promise<unknown> {
    if (type === 'none') return undefined;
    return evaluateProperty(RED, node, value || fallback, type || 'msg', msg);
  }

  async function files(msg: Msg): Promise<{ protocol: FileSource; support: FileSource[]; params?: Record<string, unknown> }> {
    const protoValue = await evaluateProperty(RED, node, def.protocol || 'payload', def.protocolType || 'msg', msg);
    const nameValue = def.protocolNameType === 'none' ? undefined : await evaluateProperty(RED, node, def.protocolName || 'filename', def.protocolNameType || 'msg', msg);
    let protocol: FileSource;
    if (Buffer.isBuffer(protoValue)) {
      if (typeof nameValue !== 'string' || !nameValue.trim()) {
        throw badInput('ot2.protocolBufferNoName');
      }
      protocol = { name: nameValue, data: protoValue };
    } else if (typeof protoValue === 'string' && protoValue.trim()) protocol = { path: protoValue.trim() };
    else if (def.protocolType === 'str' || def.protocolType === 'env') throw badInput('ot2.protocolPathMissing');
    else throw badInput('ot2.protocolMsgEmpty', { property: def.protocol || 'payload' });

    const support: FileSource[] = [];
    if (def.supportFilesType !== 'none' && def.supportFiles !== undefined && def.supportFiles !== '') {
      const raw = await evaluateProperty(RED, node, def.supportFiles, def.supportFilesType || 'msg', msg);
      const list = raw === undefined || raw === null || raw === '' ? [] : Array.isArray(raw) ? raw : [raw];
      for (const [i, item] of list.entries()) {
        if (typeof item === 'string' && item.trim()) support.push({ path: item.trim() });
        else if (item && typeof item === 'object' && Buffer.isBuffer((item as { data?: unknown }).data)) support.push({ name: String((item as { name?: unknown }).name ?? ''), data: (item as { data: Buffer }).data });
        else if (item && typeof item === 'object' && typeof (item as { path?: unknown }).path === 'string') support.push({ path: (item as { path: string }).path, name: (item as { name?: string }).name });
        else if (Buffer.isBuffer(item) && list.length === 1 && typeof msg.filename === 'string') support.push({ name: msg.filename, data: item });
        else throw badInput('ot2.supportFileInvalid', { n: i + 1 });
      }
    }

    let params: Record<string, unknown> | undefined;
    if (def.parametersType !== 'none' && def.parameters) {
      const raw = await evaluateProperty(RED, node, def.parameters, def.parametersType || 'msg', msg);
      if (raw !== undefined && raw !== null && raw !== '') {
        if (typeof raw !== 'object' || Array.isArray(raw)) throw badInput('ot2.parametersNotObject');
        params = raw as Record<string, unknown>;
      }
    }
    return { protocol, support, params };
  }

  const { protocol, support, params } = await files(msg);
  return {
    protocol,
    supportFiles: support,
    runTimeParameterValues: params,
    runTimeParameterFiles: parameterFileSources(await optional(def.parameterFiles, def.parameterFilesType, 'runTimeParameterFiles', msg)),
    labwareOffsets: labwareOffsets(await optional(def.offsets, def.offsetsType, 'labwareOffsets', msg)),
    offsetsFromRecentRun: typeof msg.offsetsFromRecentRun === 'boolean' ? msg.offsetsFromRecentRun : !!def.recentOffsets,
    keep: typeof msg.keep === 'boolean' ? msg.keep : !!def.keep,
  };
}
