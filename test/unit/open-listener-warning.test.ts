import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { Collector, openListenerWarning } from '../../src/serve/collector.js';
import { freeUdpPort } from '../support/daemon.js';
import { captureLog } from '../support/logs.js';

const ADVICE =
  'any host that reaches these ports can send flow data; list your exporters in exporters.allow (SCITAGS_EXPORTERS_ALLOW) or bind one address';

describe('start-up warning: listeners on every interface with an empty allow-list', () => {
  it('names each listener bound to :: or 0.0.0.0; nothing with an allow-list or a single address', () => {
    const listeners = [
      { name: 'ipfix', port: 4739, bind: '::' },
      { name: 'sflow', port: 6343, bind: '0.0.0.0' },
      { name: 'netflow', port: 2055, bind: '192.0.2.10' },
    ];
    expect(openListenerWarning(listeners, [])).toEqual({
      message: `listening on all interfaces (ipfix [::]:4739, sflow 0.0.0.0:6343) with an empty exporters.allow: ${ADVICE}`,
      fields: { listeners: ['ipfix [::]:4739', 'sflow 0.0.0.0:6343'] },
    });
    expect(openListenerWarning(listeners, ['192.0.2.0/24'])).toBeUndefined();
    expect(openListenerWarning([listeners[2]!], [])).toBeUndefined();
  });

  it('serve logs it once at start (one WARN line), and not when exporters.allow is set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-open-'));
    for (const allow of [[], ['192.0.2.0/24']]) {
      const port = await freeUdpPort();
      const config = configSchema.parse({
        listeners: { ipfix: [{ port, bind: '::' }], netflow: [{ port: 0 }], sflow: [{ port: 0 }], firefly: [{ port: 0 }] },
        exporters: { allow },
        api: { port: 0 },
        store: { type: 'sqlite', path: join(dir, `s${allow.length}.sqlite`) },
        registry: { url: '', cacheFile: '' },
        decoder: { stateFile: '', crashDir: '', workers: 1 },
      });
      const { log, lines } = captureLog('warn');
      const collector = await Collector.create(config, { now: Date.now, log });
      await collector.start();
      await collector.stop();
      const warnings = lines.filter((l) => l.msg.startsWith('listening on all interfaces'));
      expect(warnings).toEqual(
        allow.length === 0
          ? [
              {
                level: 'warn',
                component: 'collector',
                msg: `listening on all interfaces (ipfix [::]:${port}) with an empty exporters.allow: ${ADVICE}`,
                listeners: [`ipfix [::]:${port}`],
              },
            ]
          : [],
      );
    }
  });
});
