/** What the pack's config nodes offer the nodes that use them (types only). */
import type { Node } from 'node-red';
import type { BenchlingClient } from '../clients/benchling/client';
import type { CheckedConfigNode } from './settings';

export interface BenchlingTenantNode extends Node<{ apiKey?: string; clientId?: string; clientSecret?: string; redisPassword?: string }>, CheckedConfigNode {
  /** The tenant's client; throws a clear error when the URL or key is missing or malformed. */
  client(): BenchlingClient;
}

export interface GenieTenantNode extends Node<{ token?: string }>, CheckedConfigNode {
  /** The tenant's Genie LabOS client; throws a clear error when the URL or token is missing or malformed. */
  client(): import('../clients/genie/client').GenieClient;
}

/**
 * What a deployed genie-command node tells its dialog (genie-tenant's admin route): the instrument
 * and action it uses when a message does not name them, from its own settings with `${ENV}` / env
 * resolved in its flow's environment. A setting that only a message gives (msg., flow., global.)
 * is `{ from: <type> }`.
 */
export interface GenieCommandTarget {
  instrument: { setting: string; type: string; value?: string; from?: string };
  action: { setting: string; type: string; value?: string; from?: string };
}

export interface GenieCommandNode extends Node {
  genieTarget(): Promise<GenieCommandTarget>;
}

export interface BioafHostNode extends Node<{ apiKey?: string; webhookSecrets?: string }>, CheckedConfigNode {
  /** The host's bioAF Integration API client; throws a clear error when the URL or key is missing or malformed. */
  client(): import('../clients/bioaf/client').BioafClient;
  /** The webhook signing secrets currently accepted (empty when none are set). */
  webhookSecrets(): string[];
}

export interface Ot2RobotNode extends Node, CheckedConfigNode {
  /** The robot's client (shared by every node using this robot); throws a clear error when the host is unusable. */
  client(): import('../clients/opentrons/client').OpentronsClient;
}
