/**
 * Who may talk to `r1 serve`: the bind address (loopback unless asked), and the API key, compared
 * in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Thrown when the server must not start as configured; the CLI prints it (exit code 2). */
export class ServeConfigError extends Error {
  override readonly name = 'ServeConfigError';
}

function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  if (isIP(a) === 4) return a.startsWith('127.');
  if (a === '::1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

/** True when every address `host` names is a loopback address (127.0.0.0/8, ::1). */
export async function isLoopbackHost(host: string): Promise<boolean> {
  const h = host.replace(/^\[|\]$/g, '');
  if (isIP(h) !== 0) return isLoopbackAddress(h);
  if (h.toLowerCase() === 'localhost') return true;
  try {
    const addresses = await lookup(h, { all: true });
    return addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a.address));
  } catch {
    throw new ServeConfigError(`--host ${host}: the name does not resolve to an address of this machine.`);
  }
}

/**
 * Refuses to listen beyond this machine without an API key: anyone who reaches the port could
 * otherwise use the model. `insecure` (--insecure) says the operator means it.
 */
export async function checkBindSafety(host: string, apiKey: string | undefined, insecure: boolean): Promise<void> {
  if (apiKey || insecure) return;
  if (await isLoopbackHost(host)) return;
  throw new ServeConfigError(
    `refusing to listen on ${host} without an API key: every machine that reaches it could use the model. ` +
      'Set R1_API_KEY (or --api-key KEY) so that clients must send "Authorization: Bearer KEY", or pass --insecure if the network is yours alone.',
  );
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Checks an `Authorization` header against the key. Both sides are hashed first, so the
 * comparison takes the same time whatever the length or the content of the guess.
 */
export function authorized(header: string | undefined, apiKey: string): boolean {
  const m = /^Bearer[ \t]+(.+?)[ \t]*$/i.exec(header ?? '');
  const given = m ? m[1]! : '';
  return timingSafeEqual(sha256(given), sha256(apiKey)) && m !== null;
}
