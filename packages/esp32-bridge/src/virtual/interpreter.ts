/**
 * One MicroPython WebAssembly interpreter, isolated from the others in this process.
 *
 * The port keeps its proxy tables and the current `Module` in globals (`globalThis.Module`,
 * `proxy_js_ref`, ...), so a second `loadMicroPython` breaks the first. Each interpreter
 * saves its own copy of those globals; `run()` installs them for a synchronous call and
 * restores the previous ones after. Loads are serialised, and the proxy finalization
 * callbacks of an interpreter run with its own globals installed.
 */
import { loadMicroPython, type MicroPython } from '@micropython/micropython-webassembly-pyscript';

const KEYS = [
  'Module',
  'proxy_js_ref',
  'proxy_js_ref_next',
  'proxy_js_ref_map',
  'proxy_js_map',
  'proxy_js_existing',
  'pyProxyFinalizationRegistry',
] as const;

type Saved = Record<(typeof KEYS)[number], unknown>;
const g = globalThis as unknown as Saved & { FinalizationRegistry: typeof FinalizationRegistry };

function capture(): Saved {
  const s = {} as Saved;
  for (const k of KEYS) s[k] = g[k];
  return s;
}
function install(s: Saved): void {
  for (const k of KEYS) g[k] = s[k];
}

let loading: Promise<unknown> = Promise.resolve();

export class Interpreter {
  private constructor(
    private readonly mp: MicroPython,
    private readonly state: Saved,
  ) {}

  /** Loads a fresh interpreter with `heapBytes` of MicroPython heap. */
  static load(heapBytes: number, stdout: (line: string) => void): Promise<Interpreter> {
    const p = loading.then(() => Interpreter.load1(heapBytes, stdout));
    loading = p.catch(() => undefined);
    return p;
  }

  private static async load1(
    heapBytes: number,
    stdout: (line: string) => void,
  ): Promise<Interpreter> {
    const RealRegistry = g.FinalizationRegistry;
    const box: { state?: Saved } = {};
    g.FinalizationRegistry = class<T> extends RealRegistry<T> {
      constructor(cb: (held: T) => void) {
        super((held: T) => {
          if (box.state === undefined) return;
          const prev = capture();
          install(box.state);
          try {
            cb(held);
          } finally {
            Object.assign(box.state, capture());
            install(prev);
          }
        });
      }
    };
    const prev = capture();
    let mp: MicroPython;
    try {
      mp = await loadMicroPython({ heapsize: heapBytes, stdout, stderr: stdout });
    } finally {
      g.FinalizationRegistry = RealRegistry;
    }
    box.state = capture();
    install(prev);
    return new Interpreter(mp, box.state);
  }

  /** Runs `fn` with this interpreter's globals installed. `fn` must be synchronous. */
  run<T>(fn: (mp: MicroPython) => T): T {
    const prev = capture();
    install(this.state);
    try {
      return fn(this.mp);
    } finally {
      Object.assign(this.state, capture());
      install(prev);
    }
  }

  /** Runs Python statements. */
  exec(code: string): void {
    this.run((mp) => mp.runPython(code));
  }

  /** Evaluates a Python expression whose value is a str, int, float, bool or None. */
  value(expr: string): unknown {
    return this.run((mp) => {
      mp.runPython('_js_value = ' + expr);
      return mp.globals.get('_js_value');
    });
  }

  /**
   * A JS function that calls the Python callable `expr` (evaluated once) with this
   * interpreter's globals installed: no compile per call, unlike `exec`.
   */
  fn(expr: string): (...args: unknown[]) => unknown {
    const f = this.value(expr);
    if (typeof f !== 'function') throw new Error(`MicroPython: ${expr} is not callable`);
    const call = f as (...args: unknown[]) => unknown;
    return (...args: unknown[]) => this.run(() => call(...args));
  }

  get fs(): MicroPython['FS'] {
    return this.mp.FS;
  }

  registerJsModule(name: string, module: object): void {
    this.run((mp) => {
      mp.registerJsModule(name, module);
    });
  }
}
