/**
 * TLS for the signaling port: with TLS_CERT and TLS_KEY (PEM files) the one port speaks
 * https and wss instead of http and ws. Pages off loopback need a secure context:
 * WebCrypto (crypto.subtle) and Web Locks exist only there, and the node id's lock and
 * the trust keys depend on them.
 *
 * The files are read at start and again on SIGHUP (main.ts), so a renewed certificate
 * (e.g. from an ACME client) is picked up without dropping connections.
 */
import { readFile } from 'node:fs/promises';

export interface TlsFiles {
  certPath: string;
  keyPath: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

type Env = Record<string, string | undefined>;

/** TLS_CERT / TLS_KEY: both or neither; null when neither is set. */
export function tlsFilesFromEnv(env: Env): TlsFiles | null {
  const cert = env.TLS_CERT?.trim() ?? '';
  const key = env.TLS_KEY?.trim() ?? '';
  if (cert === '' && key === '') return null;
  if (cert === '' || key === '') throw new Error('TLS_CERT and TLS_KEY go together: set both (PEM certificate chain and private key files) or neither');
  return { certPath: cert, keyPath: key };
}

/** Reads both files; the error names the variable and the file. */
export async function loadTls(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (path: string, name: string): Promise<Buffer> => {
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (err) {
      throw new Error(`${name}: cannot read ${path}: ${(err as Error).message}`);
    }
    if (!data.includes('-----BEGIN ')) throw new Error(`${name}: ${path} is not a PEM file`);
    return data;
  };
  // both read at once, but a failure is reported in the variables' order (TLS_CERT first),
  // not by which read happened to fail first
  const [cert, key] = await Promise.allSettled([read(files.certPath, 'TLS_CERT'), read(files.keyPath, 'TLS_KEY')]);
  if (cert.status === 'rejected') throw cert.reason;
  if (key.status === 'rejected') throw key.reason;
  return { cert: cert.value, key: key.value };
}
