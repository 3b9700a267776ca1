/**
 * The requests this window has sent and not seen finish, and which of them the server is
 * running. Pure (no `vscode` import): unit-tested under plain Node.
 */

export class Runs<T> {
  private readonly all = new Map<string, T>();
  private active: string | undefined;

  add(id: string, run: T): void {
    this.all.set(id, run);
  }

  get(id: string): T | undefined {
    return this.all.get(id);
  }

  delete(id: string): void {
    this.all.delete(id);
    if (this.active === id) this.active = undefined;
  }

  /** The server reported that it runs (or loads the model for) `id`. */
  started(id: string): void {
    if (this.all.has(id)) this.active = id;
  }

  /**
   * The request that Cancel without an id stops: the one the server runs. Before the server says
   * which, the oldest sent: the server runs requests one at a time, in the order they came. A
   * queued request is never picked (the view gives each its own Cancel).
   */
  current(): T | undefined {
    if (this.active !== undefined) return this.all.get(this.active);
    return this.all.values().next().value;
  }

  values(): IterableIterator<T> {
    return this.all.values();
  }
}
