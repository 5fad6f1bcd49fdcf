// The dashboard's static files (static/: plain HTML, CSS, JS, no build step), read once from the package
// folder, so the sources and their build in dist/ serve the same files. Served with a strict CSP.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

/** Same-origin scripts, styles and fetch/WebSocket only; nothing inline, nothing framed. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The folder holding static/: beside this file in the sources, sidecar/dashboard/ under the package root from dist/. */
export const STATIC_DIR = staticDir(dirname(fileURLToPath(import.meta.url)));

const cache = new Map<string, Buffer>();

/** Answers `path` when it is one of the dashboard's files; false otherwise. */
export function serveAsset(path: string, res: ServerResponse): boolean {
  const asset = FILES[path];
  if (!asset) return false;
  let body = cache.get(asset.file);
  if (!body) cache.set(asset.file, body = readFileSync(join(STATIC_DIR, asset.file)));
  res.writeHead(200, {
    'content-type': asset.type, 'content-length': body.length, 'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache', 'x-frame-options': 'DENY',
  });
  res.end(body);
  return true;
}

function staticDir(here: string): string {
  if (existsSync(join(here, 'static', 'index.html'))) return join(here, 'static');
  // dist/sidecar/dashboard/ → the package root's sidecar/dashboard/static.
  let dir = here;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'sidecar', 'dashboard', 'static');
}
