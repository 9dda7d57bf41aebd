/** What the pack's config nodes offer the nodes that use them (types only). */
import type { Node } from 'node-red';
import type { BenchlingClient } from '../clients/benchling/client';

export interface BenchlingTenantNode extends Node<{ apiKey?: string }> {
  /** The tenant's client; throws a clear error when the URL or key is missing or malformed. */
  client(): BenchlingClient;
}
