/**
 * A Node-RED plugin that serves the pack's Prometheus metrics (lib/metrics) on the admin server:
 * `GET <httpAdminRoot>/labwire/metrics`, Prometheus text exposition format. With adminAuth set,
 * the scraper needs the `labwire.read` permission (a read-only user, or a token from adminAuth's
 * `tokens` function); see docs/deployment.md.
 */
import type { NodeAPI } from 'node-red';
import { enableProcessMetrics, scrape } from './lib/metrics';

export = function (RED: NodeAPI): void {
  RED.plugins.registerPlugin('labwire-metrics', { type: 'labwire-metrics' } as never);
  enableProcessMetrics();
  RED.httpAdmin.get('/labwire/metrics', RED.auth.needsPermission('labwire.read'), (_req, res) => {
    scrape().then(
      ({ contentType, text }) => {
        // Node's own setHeader/end: Express' set/send would reorder the content type's parameters.
        res.statusCode = 200;
        res.setHeader('Content-Type', contentType);
        res.setHeader('Cache-Control', 'no-store');
        res.end(text);
      },
      (err: Error) => {
        RED.log.warn(`labwire metrics: ${err.message}`);
        res.status(500).type('text/plain').send('metrics unavailable\n');
      },
    );
  });
};
