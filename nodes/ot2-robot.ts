/**
 * `ot2-robot` config node: where an Opentrons robot is (host, port 31950) and which HTTP API it
 * speaks (auto from GET /health, or fixed: 4.x protocol sessions / 5.x+ runs). The robot API has
 * no credentials. Every node using this robot shares one client (and its detected generation).
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { Ot2RobotNode } from './lib/config-nodes';
import { DEFAULT_PORT, OpentronsClient } from './clients/opentrons/client';
import type { GenerationSetting } from './clients/opentrons/types';
import { translator } from './lib/node-red';
import { Settings } from './lib/settings';

interface Ot2RobotDef extends NodeDef {
  host: string;
  port?: string | number;
  generation?: GenerationSetting;
  timeout?: string | number;
}

export = function (RED: NodeAPI): void {
  function Ot2Robot(this: Ot2RobotNode, def: Ot2RobotDef) {
    RED.nodes.createNode(this, def);
    let client: OpentronsClient | null = null;
    const t = translator(RED, 'ot2-robot');
    const s = new Settings(RED, this);
    const port = s.port(t('label.port'), def.port, DEFAULT_PORT);
    const generation: GenerationSetting = def.generation === 'runs' || def.generation === 'sessions' ? def.generation : 'auto';
    const timeoutMs = s.seconds(t('label.timeout'), def.timeout, { default: 15, min: 0.1 });
    this.settingsProblem = () => s.ownProblem();
    this.client = () => {
      client ??= new OpentronsClient({ host: def.host, port, generation, timeoutMs });
      return client;
    };
    this.on('close', (done: () => void) => {
      client?.close();
      client = null;
      done();
    });
  }
  RED.nodes.registerType('ot2-robot', Ot2Robot as never);
};
