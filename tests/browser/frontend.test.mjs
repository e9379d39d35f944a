// hydrant's frontend story in a real browser: a page on another origin than hydrant's shows
// the simulator's files through hydrant's stable URLs only (<img>, <video> with seeking,
// hls.js, signed links, rotation with the browser cache kept, pending renditions), and the
// demo's gallery page renders (its screenshot is docs/demo.png).
//
//   node --test tests/browser/      (tests/run.sh browser builds hydrant and runs this)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT, freePort, launchBrowser, networkLog, sleep, start, startHydrant, startPageServer,
  startSim, stopAll,
} from './harness.mjs';

const KEY = 'browser-test-signing-key';
let sim; let hydrant; let refusing; let signed; let page; let log; let browser; let pages;

before(async () => {
  sim = await startSim();
  pages = await startPageServer();
  [hydrant, refusing, signed] = await Promise.all([
    startHydrant(sim, ['--cors-origins', pages.origin]),
    // The page's origin is not listed: scripts there must be refused.
    startHydrant(sim, ['--cors-origins', 'http://127.0.0.1:9']),
    startHydrant(sim, ['--cors-origins', pages.origin, '--signing-keys', KEY]),
  ]);
  browser = await launchBrowser();
  page = await browser.context.newPage();
  log = await networkLog(page);
  await page.goto(`${pages.origin}/`);
});

after(async () => {
  await browser?.context.close();
  if (browser) fs.rmSync(browser.profile, { recursive: true, force: true });
  pages?.server.close();
  stopAll();
});

const call = (fn, ...args) => page.evaluate(([f, a]) => window.t[f](...a), [fn, args]);
const json = async (url) => (await fetch(url)).json();
const simPost = (p, body) => fetch(`${sim}${p}`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
});
/// Responses from the simulator's CDN for one file and rendition path part.
const cdnHits = (id, part) => log.filter((e) => e.url?.startsWith(`${sim}/cdn/${id}/${part}`));
/// `exp`/`sig` for a signed link, as the contract defines them.
const sign = (id, exp) => {
  const sig = crypto.createHmac('sha256', KEY).update(`${id}.${exp}`).digest('base64url');
  return `exp=${exp}&sig=${sig}`;
};

test('<img> on the thumbnail redirect decodes at the size the simulator reports', async () => {
  const id = 'vg_file_alpha_0001';
  const file = await json(`${hydrant}/files/${id}`);
  const th = file.renditions.thumbnail;
  const r = await call('img', `${hydrant}/files/${id}/redirect?rendition=thumbnail`);
  assert.deepEqual(r, { ok: true, w: th.width, h: th.height });
  const img = await call('img', `${hydrant}/files/vg_file_alpha_0004/redirect?rendition=preview`);
  assert.deepEqual(img, { ok: true, w: 1024, h: 1024 });
  const hit = cdnHits(id, 'thumbnail').find((e) => e.status === 200);
  assert.equal(hit.headers['content-type'], 'image/jpeg');
});

test('<video> on the preview redirect loads, and seeking lands where asked (Range)', async () => {
  const id = 'vg_file_alpha_0001';
  const file = await json(`${hydrant}/files/${id}`);
  const r = await call('video', `${hydrant}/files/${id}/redirect?rendition=preview`, 2.5);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.w, file.renditions.preview.width);
  assert.equal(r.h, file.renditions.preview.height);
  assert.ok(Math.abs(r.landed - 2.5) < 0.6, `landed at ${r.landed}`);
  // Without Range support Chromium "seeks" to 0 in a file it has not buffered; this one is
  // small enough to be buffered whole, so the 206s below are the proof (with the CDN's Range
  // support switched off, this assertion fails).
  const ranged = cdnHits(id, 'preview').filter((e) => e.req.range && e.status === 206);
  assert.ok(ranged.length >= 1, 'the video element asked the CDN for ranges');
  assert.match(ranged[0].headers['content-range'], /^bytes \d+-\d+\/\d+$/);
  assert.equal(ranged[0].headers['content-type'], 'video/mp4');
});

test('hls.js plays the hls redirect; refused where the page origin is not allowed', async () => {
  const id = 'vg_file_alpha_0001';
  const r = await call('hls', `${hydrant}/files/${id}/redirect?rendition=hls`);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.manifest, true);
  assert.ok(r.frags >= 1);
  assert.deepEqual([r.w, r.h], [640, 360]);
  const segs = cdnHits(id, 'hls/seg').filter((e) => e.status === 200);
  assert.ok(segs.length >= 1, 'segments came from their own signed URIs');
  assert.equal(segs[0].headers['content-type'], 'video/mp2t');
  // After a cross-origin redirect the browser sends `Origin: null` to the CDN: a bucket
  // must allow `*` (or `null`) for players behind hydrant.
  assert.equal(segs[0].req.origin, pages.origin, JSON.stringify(segs[0].req));
  const playlist = cdnHits(id, 'hls?');
  assert.equal(playlist[0].req.origin, 'null', JSON.stringify(playlist));

  const refused = await call('hls', `${refusing}/files/${id}/redirect?rendition=hls`);
  assert.equal(refused.ok, false);
  assert.equal(refused.manifest, false);
  assert.match(refused.error, /networkError\/manifestLoadError/);
  // The JSON view is refused to the script just the same.
  await assert.rejects(call('fileJson', `${refusing}/files/${id}`));
});

test('the page fetch()es GET /files/{id} cross-origin and builds its elements from it', async () => {
  const v = await call('showFile', `${hydrant}/files/vg_file_alpha_0001`);
  assert.equal(v.status, 200);
  for (const [name, r] of Object.entries(v.json.renditions)) {
    if (r.url) assert.ok(r.url.startsWith(`${hydrant}/files/vg_file_alpha_0001/redirect`), name);
  }
  assert.equal(v.thumbnail.ok, true);
  assert.equal(v.preview.ok, true);
  assert.ok(Math.abs(v.preview.landed - 2.5) < 0.6);
  assert.equal(v.hls.ok, true, JSON.stringify(v.hls));
  const img = await call('showFile', `${hydrant}/files/vg_file_alpha_0004`);
  assert.deepEqual(img.thumbnail, { ok: true, w: 256, h: 256 });
  assert.deepEqual(img.preview, { ok: true, w: 1024, h: 1024 });
});

test('signed links: URLs from GET /files/{id} load; expired or tampered ones fail with 403', async () => {
  const id = 'vg_file_alpha_0005';
  const exp = Math.floor(Date.now() / 1000) + 600;
  const v = await call('showFile', `${signed}/files/${id}?${sign(id, exp)}`);
  assert.equal(v.status, 200);
  assert.match(v.json.renditions.thumbnail.url, /[?&]exp=\d+&sig=|[?&]sig=.*&exp=/);
  assert.equal(v.thumbnail.ok, true);
  assert.equal(v.preview.ok, true);
  assert.equal(v.hls.ok, true, JSON.stringify(v.hls));
  // Unsigned, expired, tampered: a failed load (the 403 is in the network log, ORB hides
  // the JSON body from the <img>), and the page goes on working.
  const good = v.json.renditions.thumbnail.url;
  const expired = `${signed}/files/${id}/redirect?rendition=thumbnail&${sign(id, exp - 1200)}`;
  const tampered = good.replace(/sig=([^&])/, (_, c) => `sig=${c === 'A' ? 'B' : 'A'}`);
  for (const bad of [`${signed}/files/${id}/redirect?rendition=thumbnail`, expired, tampered]) {
    assert.deepEqual(await call('img', bad), { ok: false });
    const seen = log.filter((e) => e.url === bad);
    assert.ok(seen.some((e) => e.status === 403), `403 for ${bad}: ${JSON.stringify(seen)}`);
  }
  assert.equal((await call('img', good)).ok, true);
  const r = await call('fileJson', `${signed}/files/${id}?${sign(id, exp - 1200)}`);
  assert.equal(r.status, 403);
});

test('after the URLs rotate and expire, a reload (cache kept) still loads every element', async () => {
  const id = 'vg_file_alpha_0006';
  // Short-lived URLs: hydrant (margin 1 s) hands each out for about 5 s, and its 302s say so.
  await simPost('/_sim/url-lifetime', { seconds: 6 });
  const first = await call('showFile', `${hydrant}/files/${id}`);
  await simPost('/_sim/url-lifetime', { seconds: 3600 });
  for (const k of ['thumbnail', 'preview', 'hls']) assert.equal(first[k].ok, true, k);
  const redirects = log.filter((e) => e.url?.startsWith(`${hydrant}/files/${id}/redirect`)
    && e.status === 302);
  assert.ok(redirects.length >= 3);
  for (const e of redirects) {
    const maxAge = Number(/max-age=(\d+)/.exec(e.headers['cache-control'])[1]);
    assert.match(e.headers['cache-control'], /private/);
    assert.ok(maxAge <= 5, `a 302 cached past its URL: ${e.headers['cache-control']}`);
  }
  const old = cdnHits(id, 'thumbnail').find((e) => e.status === 200).url;
  // Wait (bounded) until the first URLs are dead at the CDN; the 302s that led to them were
  // cacheable for a second less than that.
  let status = 200;
  for (let i = 0; i < 90 && status !== 403; i += 1) {
    await sleep(100);
    status = (await fetch(old)).status;
  }
  assert.equal(status, 403, 'the first URLs have expired');
  const before = log.length;
  await page.reload();
  const again = await call('showFile', `${hydrant}/files/${id}`);
  for (const k of ['thumbnail', 'preview', 'hls']) assert.equal(again[k].ok, true, k);
  const fresh = log.slice(before).filter((e) => e.url?.startsWith(`${sim}/cdn/${id}/`));
  assert.ok(fresh.length >= 3 && fresh.every((e) => e.status === 200 || e.status === 206),
    JSON.stringify(fresh.map((e) => [e.url.split('?')[0], e.status])));
  assert.ok(!fresh.some((e) => e.url === old), 'no dead URL replayed');
});

test('a pending rendition fails with 503 + Retry-After, then loads once ready', async () => {
  const id = 'vg_file_alpha_0002';
  const url = `${hydrant}/files/${id}/redirect?rendition=preview`;
  assert.equal((await call('video', url)).ok, false);
  const seen = log.find((e) => e.url === url && e.status === 503);
  assert.ok(seen, `a 503 in the network log: ${JSON.stringify(log.filter((e) => !e.url || e.url.includes(id)))}`);
  assert.match(seen.headers['retry-after'], /^\d+$/);
  await simPost('/_sim/status', { fileId: id, rendition: 'preview', status: 'ready' });
  let r = { ok: false };
  // Bounded: hydrant's pending entry lives 1 s here.
  for (let i = 0; i < 10 && !r.ok; i += 1) {
    await sleep(500);
    r = await call('video', url);
  }
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.w, 1280);
});

test('hydrant demo serves a gallery page that plays through hydrant', async () => {
  const port = await freePort();
  const { lines } = await start(['demo', '--listen', `127.0.0.1:${port}`],
    (l) => /Gallery page/.test(l) || /^Ctrl-C/.test(l));
  const text = lines.join('\n');
  const m = /Gallery page[^\n]*\n\s*(http:\/\/\S+)/.exec(text);
  assert.ok(m, text);
  const demo = await browser.context.newPage();
  await demo.goto(m[1]);
  await demo.waitForFunction(() => window.demoReady === true, null, { timeout: 20000 });
  const state = await demo.evaluate(() => window.demoState);
  assert.ok(state.images >= 3, JSON.stringify(state));
  assert.equal(state.brokenImages, 0, JSON.stringify(state));
  assert.equal(state.previewPlaying, true, JSON.stringify(state));
  assert.match(state.hls, /^playing/, JSON.stringify(state));
  assert.ok(state.cost.hydrate >= 1, JSON.stringify(state));
  const out = path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'demo.png');
  await demo.screenshot({ path: out, fullPage: true });
  if (process.env.HYDRANT_UPDATE_SCREENSHOT) fs.copyFileSync(out, path.join(ROOT, 'docs/demo.png'));
  // Another page view costs the upstream nothing: every URL is served from hydrant's cache.
  await demo.reload();
  await demo.waitForFunction(() => window.demoReady === true, null, { timeout: 20000 });
  const again = await demo.evaluate(() => window.demoState);
  assert.equal(again.brokenImages, 0, JSON.stringify(again));
  assert.equal(again.cost.hydrate, state.cost.hydrate, JSON.stringify([state.cost, again.cost]));
  await demo.close();
});
