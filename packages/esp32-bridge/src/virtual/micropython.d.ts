declare module '@micropython/micropython-webassembly-pyscript' {
  export interface MicroPythonFS {
    mkdir(path: string): void;
    writeFile(path: string, data: string | Uint8Array): void;
    readFile(path: string): Uint8Array;
    readdir(path: string): string[];
    isDir(mode: number): boolean;
    stat(path: string): { mode: number };
  }
  export interface MicroPython {
    FS: MicroPythonFS;
    runPython(code: string): unknown;
    registerJsModule(name: string, module: object): void;
    globals: { get(key: string): unknown };
  }
  export function loadMicroPython(options: {
    heapsize?: number;
    pystack?: number;
    stdout?: (line: string) => void;
    stderr?: (line: string) => void;
  }): Promise<MicroPython>;
}
