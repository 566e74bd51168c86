#!/usr/bin/env node
// A tiny static server for the browser pages: web/<page>.html and their bundles dist/web/<page>.js (npm run build),
// sent with the cross-origin isolation headers that enable SharedArrayBuffer, hence WASM threads in the page.
//   node scripts/serve-web.mjs [--port 8080] [--host 127.0.0.1]   then open http://127.0.0.1:8080/ (the training page)
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cache-Control': 'no-store',
};

/**
 * The file behind a URL path, or null: only /, /<page>.html, /<name>.js with its source map /<name>.js.map (a page
 * bundle or a chunk-<hash>.js it imports) and /tfjs/<name>.wasm (TF.js's WASM binaries for the bench page's peer),
 * with plain names (no traversal).
 */
export function resolveWebPath(urlPath, base = root) {
  const path = decodeURIComponent(urlPath.split('?')[0]);
  if (path === '/') return join(base, 'web/train.html');
  const tfjs = /^\/tfjs\/(tfjs-backend-wasm[A-Za-z0-9_-]*\.wasm)$/.exec(path);
  if (tfjs) return join(base, 'node_modules/@tensorflow/tfjs-backend-wasm/dist', tfjs[1]);
  const m = /^\/([A-Za-z0-9_-]+)\.(html|js|js\.map)$/.exec(path);
  if (!m) return null;
  return m[2] === 'html' ? join(base, 'web', `${m[1]}.html`) : join(base, 'dist/web', `${m[1]}.${m[2]}`);
}

const CONTENT_TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json', '.wasm': 'application/wasm' };

/** An http.Server for the pages (not yet listening). */
export function createWebServer(base = root) {
  return createServer((req, res) => {
    let file = null;
    try {
      file = resolveWebPath(req.url ?? '/', base);
    } catch {
      file = null; // malformed percent-encoding
    }
    if (!file || !existsSync(file)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(file?.startsWith(join(base, 'dist')) ? `${req.url}: not built (run npm run build)\n` : 'not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)], ...ISOLATION_HEADERS });
    res.end(readFileSync(file));
  });
}

/** One line for a server that cannot listen: a taken port, an address not on this machine, a name that does not
 *  resolve, a privileged port. */
export function listenErrorMessage(err, { port, host }) {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE': return `cannot listen on ${where}: port ${port} is already in use (pick another with --port, or stop the other server)`;
    case 'EADDRNOTAVAIL': return `cannot listen on ${where}: ${host} is not an address of this machine (use 127.0.0.1, 0.0.0.0 or one of its interfaces with --host)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return `cannot listen on ${where}: the host name ${host} does not resolve (${err.code})`;
    case 'EACCES': return `cannot listen on ${where}: permission denied (ports below 1024 need privileges; pick another with --port)`;
    default: return `cannot listen on ${where}: ${err.message}`;
  }
}

function parseArgs(argv) {
  const opts = { port: 8080, host: '127.0.0.1' };
  const problems = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--port') {
      opts.port = Number(value);
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) problems.push(`--port: must be an integer in [0, 65535], got ${value}`);
      i++;
    } else if (flag === '--host') {
      if (!value) problems.push('--host: needs a value');
      opts.host = value;
      i++;
    } else {
      problems.push(`unknown argument '${flag}' (allowed: --port N, --host NAME)`);
    }
  }
  if (problems.length) throw new Error(problems.join('\n'));
  return opts;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  if (!existsSync(join(root, 'dist/web/train.js'))) console.warn('dist/web/train.js is missing: run npm run build first');
  const server = createWebServer();
  server.on('error', (err) => {
    console.error(`serve-web: ${listenErrorMessage(err, opts)}`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    console.log(`serving the training page at http://${opts.host}:${port}/  (?quick=1&backend=wasm|webgpu|auto); Ctrl-C stops`);
  });
}
