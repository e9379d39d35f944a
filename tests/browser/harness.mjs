// Processes and servers the browser test starts on loopback: the simulator, hydrant
// instances, a static page server on its own port (another origin than hydrant's), and
// Debian's Chromium through playwright-core. Everything started here is stopped by PID.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
export const BIN = process.env.HYDRANT_BIN || path.join(TARGET, 'debug/hydrant');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const children = [];

/// Spawns the hydrant binary; resolves once `ready(line)` matched a stdout line (15 s at most).
export function start(args, ready, env = {}) {
  const child = spawn(BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...env },
  });
  children.push(child);
  const lines = [];
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} not ready in 15 s: ${stderr}`)), 15000);
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (ready(line, lines)) {
          clearTimeout(timer);
          resolve({ child, lines });
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code}: ${stderr}`));
    });
  });
}

/// Polls `url` until it answers 200 (bounded: 100 tries, 100 ms apart).
export async function waitOk(url) {
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error(`${url} never answered 200`);
}

export async function startSim() {
  const port = await freePort();
  await start(['sim', '--listen', `127.0.0.1:${port}`], (l) => l.startsWith('hydrant-sim listening'));
  return `http://127.0.0.1:${port}`;
}

/// One `hydrant serve` in front of the simulator; `flags` adds to the common ones.
export async function startHydrant(sim, flags) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(BIN, [
    'serve', '--listen', `127.0.0.1:${port}`, '--upstream', sim, '--api-key', 'vg_sim_key_alpha',
    '--expiry-margin', '1s', '--pending-ttl', '1s', ...flags,
  ], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  children.push(child);
  await waitOk(`${url}/healthz`);
  return url;
}

/// The page's own origin: page.html and hls.js (from node_modules) on another port.
export async function startPageServer() {
  const files = {
    '/': ['text/html', path.join(HERE, 'page.html')],
    '/hls.min.js': ['text/javascript', path.join(HERE, 'node_modules/hls.js/dist/hls.min.js')],
  };
  const server = http.createServer((req, res) => {
    const f = files[new URL(req.url, 'http://x').pathname];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f[0], 'cache-control': 'no-store' });
    fs.createReadStream(f[1]).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

/// Debian's Chromium, headless, with a fresh profile.
export async function launchBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hydrant-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 760 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  return { context, profile };
}

/// Every response the page's network stack received, from DevTools' Network domain (its
/// ExtraInfo events see what ORB hides from an <img>, media requests, and each hop of a
/// redirect): url, status, response headers, and the request headers really sent for that
/// hop (Range, Origin). Answers from the browser's cache are not network responses.
export async function networkLog(page) {
  const log = [];
  const urls = new Map(); // requestId -> URL of each hop, in order
  const sent = new Map(); // requestId -> headers sent on each hop
  const got = new Map(); // requestId -> responses received so far
  const cdp = await page.context().newCDPSession(page);
  const lower = (h) => Object.fromEntries(Object.entries(h || {}).map(([k, v]) => [k.toLowerCase(), v]));
  const push = (m, id, v) => { if (!m.has(id)) m.set(id, []); m.get(id).push(v); };
  cdp.on('Network.requestWillBeSent', (e) => push(urls, e.requestId, e.request.url));
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => push(sent, e.requestId, lower(e.headers)));
  cdp.on('Network.responseReceivedExtraInfo', (e) => {
    const hop = got.get(e.requestId) || 0;
    got.set(e.requestId, hop + 1);
    const entry = { id: e.requestId, status: e.statusCode, headers: lower(e.headers) };
    // The URL and request headers may be reported after the response's ExtraInfo: read late.
    Object.defineProperty(entry, 'url', {
      enumerable: true, get: () => (urls.get(e.requestId) || [])[hop],
    });
    Object.defineProperty(entry, 'req', {
      enumerable: true,
      get: () => {
        const host = entry.url && new URL(entry.url).host;
        return (sent.get(e.requestId) || []).find((h) => h.host === host) || {};
      },
    });
    log.push(entry);
  });
  cdp.on('Network.loadingFailed', (e) => {
    log.push({ id: e.requestId, status: 0, failure: e.errorText, blocked: e.blockedReason });
  });
  await cdp.send('Network.enable');
  return log;
}

export function stopAll() {
  for (const c of children) {
    if (c.exitCode === null && c.pid) {
      try { process.kill(c.pid, 'SIGTERM'); } catch { /* already gone */ }
    }
  }
}
