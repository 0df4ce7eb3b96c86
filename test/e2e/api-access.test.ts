import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, freePorts, startDaemon } from '../support/daemon.js';

const FILE_TOKEN = 'file-token-0123456789abcdef';
const ENV_TOKEN = 'env-token-0123456789abcdef';

describe('serve: who may talk to the API (real daemon, real HTTP)', () => {
  it('tokens from api.tokensFile and SCITAGS_API_TOKENS, Host check, 405, limits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-api-'));
    const tokens = join(dir, 'tokens');
    writeFileSync(tokens, `# API tokens\n${FILE_TOKEN}\n`);
    const ports = await freePorts();
    const daemon = await startDaemon(ports, ['--workers=1', `--api-tokens-file=${tokens}`, '--api-max-in-flight=4'], {
      SCITAGS_API_TOKENS: ENV_TOKEN,
    });
    try {
      const get = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
        const r = await fetch(`${daemon.apiUrl}${path}`, { method, headers });
        return [r.status, r.headers] as const;
      };
      expect((await get('/api/v1/exporters'))[0]).toBe(401);
      expect((await get('/metrics'))[0]).toBe(401);
      expect((await get('/api/v1/exporters', { authorization: `Bearer ${FILE_TOKEN}` }))[0]).toBe(200);
      expect((await get('/metrics', { authorization: `Bearer ${ENV_TOKEN}` }))[0]).toBe(200);
      expect((await get('/api/v1/exporters', { authorization: 'Bearer wrong-token-0123456789' }))[0]).toBe(401);
      const [health, headers] = await get('/health');
      expect(health).toBe(200);
      expect(headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
      expect(headers.get('access-control-allow-origin')).toBeNull();
      // fetch sets Host from the URL (127.0.0.1:PORT, a default name); a rebinding name is refused.
      const rebound = await new Promise<number | undefined>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: ports.api, path: '/health', headers: { host: 'attacker.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.once('error', reject);
        req.end();
      });
      expect(rebound).toBe(421);
      const [post, postHeaders] = await get('/api/v1/traffic', { authorization: `Bearer ${FILE_TOKEN}` }, 'POST');
      expect([post, postHeaders.get('allow')]).toEqual([405, 'GET, HEAD']);
      // In-flight slots come back after real sockets close: many sequential requests all answer.
      const codes = new Set<number>();
      for (let i = 0; i < 12; i++) codes.add((await get('/api/v1/links', { authorization: `Bearer ${FILE_TOKEN}` }))[0]);
      expect([...codes]).toEqual([200]);
      expect(
        daemon
          .output()
          .split('\n')
          .some((l) => l.includes('listening on all interfaces')),
      ).toBe(true);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  }, 60_000);

  it('a tokens file with no token is a start-up failure: one fatal line, exit 1', async () => {
    const { api } = await freePorts();
    const dir = mkdtempSync(join(tmpdir(), 'scitags-api-'));
    const tokens = join(dir, 'tokens');
    writeFileSync(tokens, '# nobody yet\n\n');
    const args = [CLI, 'serve', '--ipfix-port=0', '--netflow-port=0', '--sflow-port=0', `--api-port=${api}`, `--api-tokens-file=${tokens}`];
    const r = spawnSync(process.execPath, args, {
      cwd: dir,
      env: { ...process.env, SCITAGS_REGISTRY_URL: 'off' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    const last = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect([last['level'], last['msg']]).toEqual(['fatal', `could not start: api.tokensFile ${tokens} holds no token`]);
  }, 60_000);
});
