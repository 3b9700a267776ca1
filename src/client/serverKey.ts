/**
 * R1: Set Server API Key. The key of the server of r1.server.url is kept in VS Code's
 * SecretStorage, under the URL's origin (scheme://host:port), never in settings. The language
 * server asks for it before each server run (r1/serverApiKey), for the origin it is about to
 * talk to, so a key is only ever sent to the server it was stored for: pointing r1.server.url
 * elsewhere does not carry the key along.
 */
import * as vscode from 'vscode';

/** What the command needs of the language server's client: to tell it settings changed. */
interface SettingsListener {
  settingsChanged(): void;
}

/** The SecretStorage key of a server's API key. */
export function serverKeySecret(origin: string): string {
  return `r1.server.apiKey:${origin}`;
}

/** scheme://host:port of a server URL (as src/remote's parseServerUrl computes it), or undefined. */
export function originOf(url: string): string | undefined {
  try {
    const u = new URL(url.trim());
    return u.protocol === 'http:' || u.protocol === 'https:' ? `${u.protocol}//${u.host}` : undefined;
  } catch {
    return undefined;
  }
}

export async function setServerApiKey(context: vscode.ExtensionContext, server: SettingsListener, log: vscode.LogOutputChannel): Promise<void> {
  const url = vscode.workspace.getConfiguration('r1').get<string>('server.url', '').trim();
  const origin = originOf(url);
  if (!origin) {
    const pick = await vscode.window.showInformationMessage(
      url ? `R1: r1.server.url ("${url}") is not an http(s) URL; set it first, then the key.` : 'R1: set r1.server.url (the server\'s base URL) first; the key is stored for that server.',
      'Open Settings',
    );
    if (pick) void vscode.commands.executeCommand('workbench.action.openSettings', 'r1.server');
    return;
  }
  const stored = await context.secrets.get(serverKeySecret(origin));
  const key = await vscode.window.showInputBox({
    title: 'R1: Set Server API Key',
    prompt: `The API key for ${origin}${stored ? ' (a key is stored; leave empty to remove it)' : ''}. It is kept in VS Code's secret storage and sent only to ${origin}.`,
    placeHolder: 'API key',
    password: true,
    ignoreFocusOut: true,
  });
  if (key === undefined) return;
  if (key.trim() === '') {
    await context.secrets.delete(serverKeySecret(origin));
    log.info(`Removed the API key for ${origin}.`);
    void vscode.window.showInformationMessage(`R1: no API key is stored for ${origin} any more.`);
  } else {
    await context.secrets.store(serverKeySecret(origin), key.trim());
    log.info(`Stored an API key for ${origin}.`);
    if (origin.startsWith('http:') && !/^http:\/\/(localhost|127\.|\[::1\])/.test(origin)) {
      log.warn(`${origin} is plain HTTP: the key crosses the network readable. Put the server behind TLS and use an https:// URL.`);
    }
    void vscode.window.showInformationMessage(`R1: the API key for ${origin} is stored.`);
  }
  server.settingsChanged();
}
