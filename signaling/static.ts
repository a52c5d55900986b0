/**
 * Serves the built app (a Vite `dist/`) with an SPA fallback to index.html.
 *
 * Path safety, in order: the decoded path must be absolute and free of `..`
 * segments, NUL and backslashes (400 otherwise); the file found must, after
 * resolving symlinks, still lie inside the real root (404 otherwise, so a
 * symlink pointing out of the root reveals nothing).
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
};

export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export type StaticOutcome = 'served' | 'fallback' | 'not-found' | 'bad-path' | 'method' | 'no-root';

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(text);
}

/** Decodes and checks the URL path; null when it is unsafe or malformed. */
export function safeRequestPath(url: string): string | null {
  const raw = url.split(/[?#]/, 1)[0] ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null; // malformed percent-encoding
  }
  if (!decoded.startsWith('/')) return null;
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  if (decoded.split('/').some((segment) => segment === '..')) return null;
  return decoded;
}

function isInside(root: string, file: string): boolean {
  return file === root || file.startsWith(root + path.sep);
}

/** Path of a regular file under `realRoot` for `relPath`, or null. */
async function findFile(realRoot: string, relPath: string): Promise<{ file: string; size: number; mtime: Date } | null> {
  let real: string;
  try {
    real = await realpath(path.join(realRoot, relPath));
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  if (!isInside(realRoot, real)) return null;
  const info = await stat(real);
  if (!info.isFile()) return null;
  return { file: real, size: info.size, mtime: info.mtime };
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG';
}

export function createStaticHandler(rootDir: string): (req: IncomingMessage, res: ServerResponse) => Promise<StaticOutcome> {
  const root = path.resolve(rootDir);

  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
      return 'method';
    }
    const reqPath = safeRequestPath(req.url ?? '/');
    if (reqPath === null) {
      plain(res, 400, 'bad path\n');
      return 'bad-path';
    }
    let realRoot: string;
    try {
      // Resolved per request: `dist/` may be (re)built while the server runs.
      realRoot = await realpath(root);
    } catch (err) {
      if (!isMissing(err)) throw err;
      plain(res, 404, `app not built: ${root} does not exist (run the build first)\n`);
      return 'no-root';
    }

    const wanted = reqPath.endsWith('/') ? `${reqPath}index.html` : reqPath;
    let found = await findFile(realRoot, wanted);
    let outcome: StaticOutcome = 'served';
    // SPA fallback only for route-like paths: a missing /assets/x.js must be a
    // 404, not HTML served as JavaScript.
    if (!found && path.posix.extname(reqPath) === '') {
      found = await findFile(realRoot, 'index.html');
      outcome = 'fallback';
    }
    if (!found) {
      plain(res, 404, 'not found\n');
      return 'not-found';
    }

    const immutable = reqPath.startsWith('/assets/') && outcome === 'served';
    res.writeHead(200, {
      'Content-Type': contentTypeFor(found.file),
      'Content-Length': found.size,
      'Last-Modified': found.mtime.toUTCString(),
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return outcome;
    }
    await new Promise<void>((resolve) => {
      const stream = createReadStream(found.file);
      stream.on('error', (err) => {
        // Headers are out already; all we can do is cut the response short.
        res.destroy(err);
        resolve();
      });
      res.on('close', () => {
        stream.destroy();
        resolve();
      });
      stream.pipe(res);
    });
    return outcome;
  };
}
