/**
 * Just enough of the `vscode` module to run ReasoningViewProvider in plain Node: file URIs, a
 * workspace, a webview view that records what is posted, and scripted dialogs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

export class Disposable {
  constructor(private readonly fn: () => void) {}
  dispose(): void {
    this.fn();
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    private readonly href: string,
  ) {}
  static file(p: string): Uri {
    return new Uri('file', pathToFileURL(p).href);
  }
  static parse(s: string): Uri {
    return new Uri(s.slice(0, s.indexOf(':')), s);
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return new Uri(base.scheme, `${base.href.replace(/\/$/, '')}/${parts.join('/')}`);
  }
  get fsPath(): string {
    return fileURLToPath(this.href);
  }
  toString(): string {
    return this.href;
  }
}

export class Range {
  constructor(
    readonly startLine: number,
    readonly startCharacter: number,
    readonly endLine: number,
    readonly endCharacter: number,
  ) {}
}

/** What the tests script and observe. */
export const fake = {
  workspaceFolders: [] as { uri: Uri; name: string; index: number }[],
  warningAnswer: undefined as string | undefined,
  /** Every warning shown, with its modal flag and detail. */
  warnings: [] as { message: string; modal?: boolean; detail?: string }[],
  saveTarget: undefined as Uri | undefined,
  opened: [] as { uri: string; line?: number }[],
  external: [] as string[],
  clipboard: '',
  commands: [] as string[],
  providers: new Map<string, unknown>(),
};

export const window = {
  registerWebviewViewProvider(id: string, provider: unknown) {
    fake.providers.set(id, provider);
    return new Disposable(() => fake.providers.delete(id));
  },
  async showWarningMessage(message: string, options?: { modal?: boolean; detail?: string }) {
    fake.warnings.push({ message, modal: options?.modal, detail: options?.detail });
    return fake.warningAnswer;
  },
  async showSaveDialog() {
    return fake.saveTarget;
  },
  async showTextDocument(uri: Uri, options?: { selection?: Range }) {
    fake.opened.push({ uri: uri.toString(), line: options?.selection?.startLine });
  },
};

export const workspace = {
  get workspaceFolders() {
    return fake.workspaceFolders;
  },
  fs: {
    async writeFile(uri: Uri, data: Uint8Array) {
      mkdirSync(dirname(uri.fsPath), { recursive: true });
      writeFileSync(uri.fsPath, data);
    },
  },
};

export const env = {
  async openExternal(uri: Uri) {
    fake.external.push(uri.toString());
    return true;
  },
  clipboard: {
    async writeText(t: string) {
      fake.clipboard = t;
    },
  },
};

export const commands = {
  async executeCommand(id: string) {
    fake.commands.push(id);
  },
};

/** A memento backed by a map, as `context.workspaceState`. */
export class Memento {
  readonly data = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as T);
  }
  async update(key: string, value: unknown): Promise<void> {
    this.data.set(key, JSON.parse(JSON.stringify(value)));
  }
}

/** A webview view whose page is this test: it records posts and can send messages. */
export class FakeWebviewView {
  visible = true;
  readonly posted: unknown[] = [];
  private receive: ((m: unknown) => unknown) | undefined;
  private disposeListener: (() => void) | undefined;
  readonly webview = {
    options: {} as { enableScripts?: boolean; localResourceRoots?: Uri[] },
    html: '',
    cspSource: 'https://fake.vscode-cdn.net',
    asWebviewUri: (u: Uri) => Uri.parse(`https://fake.vscode-cdn.net${u.fsPath}`),
    onDidReceiveMessage: (cb: (m: unknown) => unknown) => {
      this.receive = cb;
      return new Disposable(() => (this.receive = undefined));
    },
    postMessage: async (m: unknown) => {
      if (this.visible) this.posted.push(JSON.parse(JSON.stringify(m)));
      return this.visible;
    },
  };
  onDidDispose(cb: () => void) {
    this.disposeListener = cb;
    return new Disposable(() => (this.disposeListener = undefined));
  }
  show(): void {}
  /** Sends a message as the page would, and waits for the host's reply to `requestId`. */
  async request(requestId: number, method: string, params: unknown = {}): Promise<{ type: string; result?: unknown; error?: { code: string; message: string } }> {
    this.receive?.({ type: 'request', requestId, method, params });
    for (let i = 0; i < 200; i++) {
      const reply = this.posted.find((m) => (m as { requestId?: number }).requestId === requestId);
      if (reply) return reply as never;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no reply to ${method} #${requestId}`);
  }
  dispose(): void {
    this.disposeListener?.();
  }
}
