/**
 * Mocha entry point for the extension-host integration tests, shared by both runners:
 * - code-server: the test-runner extension (../runner) calls run() when it activates;
 * - @vscode/test-electron (../runTest.ts): VS Code loads this bundle as extensionTestsPath and calls run().
 * The suites are imported statically so one esbuild bundle holds mocha and every test.
 */
import Mocha from 'mocha';

/** One finished test, as written to the results file. */
export interface TestResult {
  title: string;
  state: 'passed' | 'failed' | 'pending';
  durationMs: number;
  error?: string;
}

export interface RunResults {
  passed: number;
  failed: number;
  pending: number;
  durationMs: number;
  tests: TestResult[];
}

export interface RunOptions {
  /** Called for every finished test (the code-server runner streams them to its results file). */
  onResult?: (result: TestResult) => void;
  timeoutMs?: number;
}

/** Runs every suite; resolves with the results (rejects only when mocha itself fails). */
export async function runSuites(options: RunOptions = {}): Promise<RunResults> {
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: options.timeoutMs ?? 60_000, reporter: 'spec' });
  // The tdd interface defines suite()/test()/setup() for modules loaded after this event.
  mocha.suite.emit('pre-require', globalThis, 'r1-integration', mocha);
  await import('./extension.test');
  await import('./check.test');
  const tests: TestResult[] = [];
  const t0 = Date.now();
  return new Promise<RunResults>((resolve, reject) => {
    try {
      const runner = mocha.run(() => {
        resolve({
          passed: tests.filter((t) => t.state === 'passed').length,
          failed: tests.filter((t) => t.state === 'failed').length,
          pending: tests.filter((t) => t.state === 'pending').length,
          durationMs: Date.now() - t0,
          tests,
        });
      });
      const add = (result: TestResult): void => {
        tests.push(result);
        options.onResult?.(result);
      };
      runner.on('pass', (test) => add({ title: test.fullTitle(), state: 'passed', durationMs: test.duration ?? 0 }));
      runner.on('pending', (test) => add({ title: test.fullTitle(), state: 'pending', durationMs: 0 }));
      runner.on('fail', (test, err: unknown) =>
        add({ title: test.fullTitle(), state: 'failed', durationMs: test.duration ?? 0, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
    }
  });
}

/** The contract of @vscode/test-electron's extensionTestsPath: reject when any test failed. */
export async function run(): Promise<void> {
  const results = await runSuites();
  if (results.failed > 0) throw new Error(`${results.failed} of ${results.tests.length} integration tests failed.`);
  if (results.tests.length === 0) throw new Error('No integration test ran.');
}
