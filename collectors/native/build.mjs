#!/usr/bin/env node
/**
 * `npm install` hook: builds build/Release/scitags_recv.node (batched UDP receive) with
 * node-gyp. It never fails the install: without the addon the collector uses node:dgram.
 *
 * Why a script and not plain `node-gyp rebuild`: node-gyp downloads Node's headers unless it
 * is told where they are, and on machines without internet access (or behind a registry-only
 * proxy) that download fails although the headers are installed locally, e.g. by Debian's
 * or NodeSource's nodejs package under /usr/include/node. So this looks for them first.
 *
 * Environment: SCITAGS_NATIVE_RECV=off skips the build; npm_config_nodedir (or
 * `npm install --nodedir=DIR`) overrides the header search.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FALLBACK = 'scitags-collector: native batched receive not built; falling back to node:dgram';

function skip(why) {
  console.warn(`${FALLBACK} (${why})`);
  process.exit(0);
}

/** "20.20.2" from DIR/include/node/node_version.h, or undefined. */
function headerVersion(prefix) {
  try {
    const h = readFileSync(join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
    const part = (name) => new RegExp(`#define\\s+NODE_${name}_VERSION\\s+(\\d+)`).exec(h)?.[1];
    const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map(part);
    return major && minor && patch ? `${major}.${minor}.${patch}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A prefix whose include/node holds node_api.h. The running Node's own prefix first (a
 * tarball install keeps its headers next to bin/node), then the distribution locations.
 * Node-API is ABI-stable, so headers of another Node version still build a working addon;
 * an exact version match is only preferred.
 */
function findNodeDir() {
  const candidates = [dirname(dirname(process.execPath)), '/usr', '/usr/local'];
  const usable = candidates.filter(
    (p) => existsSync(join(p, 'include', 'node', 'node_api.h')) && existsSync(join(p, 'include', 'node', 'common.gypi')),
  );
  const want = process.versions.node;
  return usable.find((p) => headerVersion(p) === want) ?? usable[0];
}

if (process.env.SCITAGS_NATIVE_RECV === 'off') skip('SCITAGS_NATIVE_RECV=off');
if (process.platform !== 'linux') skip(`recvmmsg(2) receive is Linux-only; this is ${process.platform}`);

// npm sets npm_config_node_gyp to its bundled node-gyp; run directly, use the node-gyp
// that ships inside the npm next to this Node, else one on PATH.
const gypJs = [
  process.env.npm_config_node_gyp,
  join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((p) => p !== undefined && existsSync(p));
const args = ['rebuild'];
if (!process.env.npm_config_nodedir) {
  const nodedir = findNodeDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
}
const [cmd, argv] = gypJs ? [process.execPath, [gypJs, ...args]] : ['node-gyp', args];
console.log(`scitags-collector: building the native receive addon: ${[cmd, ...argv].join(' ')}`);
const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' });
if (r.error) skip(`${cmd}: ${r.error.message}`);
if (r.status !== 0) skip(`node-gyp exited with ${r.status ?? r.signal}`);
