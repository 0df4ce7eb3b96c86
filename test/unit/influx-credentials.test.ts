import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { influxStoreSchema } from '../../src/config/schema.js';
import { resolveInfluxCredentials } from '../../src/store/influx/credentials.js';

const base = influxStoreSchema.parse({ type: 'influx', username: 'writer' });

describe('store.passwordFile and store.tokenFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scitags-cred-'));

  it('reads the password at start, trailing newlines trimmed, every other character kept', () => {
    writeFileSync(join(dir, 'pw'), ' p@ss word \r\n\n');
    const r = resolveInfluxCredentials({ ...base, passwordFile: join(dir, 'pw') });
    expect([r.username, r.password, r.token]).toEqual(['writer', ' p@ss word ', '']);
  });

  it('reads the token, surrounding whitespace trimmed', () => {
    writeFileSync(join(dir, 'tok'), '  t0ken==\n');
    expect(resolveInfluxCredentials({ ...base, tokenFile: join(dir, 'tok') }).token).toBe('t0ken==');
  });

  it('leaves a configuration without files as it is', () => {
    expect(resolveInfluxCredentials({ ...base, password: 'x' })).toEqual({ ...base, password: 'x' });
  });

  it('refuses a missing or empty file, and a file together with a value, naming the option', () => {
    expect(() => resolveInfluxCredentials({ ...base, passwordFile: join(dir, 'none') })).toThrow(
      `cannot read store.passwordFile ${join(dir, 'none')}: ENOENT: no such file or directory, open '${join(dir, 'none')}'`,
    );
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => resolveInfluxCredentials({ ...base, tokenFile: join(dir, 'empty') })).toThrow(
      `store.tokenFile ${join(dir, 'empty')} is empty`,
    );
    expect(() => resolveInfluxCredentials({ ...base, password: 'a', passwordFile: join(dir, 'pw') })).toThrow(
      'store.password and store.passwordFile are both set: keep one',
    );
    expect(() => resolveInfluxCredentials({ ...base, token: 'a', tokenFile: join(dir, 'tok') })).toThrow(
      'store.token and store.tokenFile are both set: keep one',
    );
  });
});
