/**
 * Elementwise kernels over Float64Array: one tight, monomorphic loop per operation, so V8
 * compiles each to straight-line code. `out` may not alias an input.
 */

export type BinaryOp = 'add' | 'subtract' | 'multiply' | 'divide' | 'power';
export type UnaryOp = 'log' | 'sqrt';

/** out[i] = a[i] op b[i] */
export function binaryColumns(
  op: BinaryOp,
  a: Float64Array,
  b: Float64Array,
  out: Float64Array,
): void {
  switch (op) {
    case 'add':
      addVV(a, b, out);
      return;
    case 'subtract':
      subVV(a, b, out);
      return;
    case 'multiply':
      mulVV(a, b, out);
      return;
    case 'divide':
      divVV(a, b, out);
      return;
    case 'power':
      powVV(a, b, out);
      return;
  }
}

/** out[i] = a[i] op s */
export function binaryScalar(op: BinaryOp, a: Float64Array, s: number, out: Float64Array): void {
  switch (op) {
    case 'add':
      addVS(a, s, out);
      return;
    case 'subtract':
      subVS(a, s, out);
      return;
    case 'multiply':
      mulVS(a, s, out);
      return;
    case 'divide':
      divVS(a, s, out);
      return;
    case 'power':
      if (s === 2) mulVV(a, a, out);
      else powVS(a, s, out);
      return;
  }
}

/** out[i] = f(a[i]) */
export function unary(op: UnaryOp, a: Float64Array, out: Float64Array): void {
  switch (op) {
    case 'log':
      logV(a, out);
      return;
    case 'sqrt':
      sqrtV(a, out);
      return;
  }
}

function addVV(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) + (b[i] as number);
}
function subVV(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) - (b[i] as number);
}
function mulVV(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) * (b[i] as number);
}
function divVV(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) / (b[i] as number);
}
function powVV(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) ** (b[i] as number);
}
function addVS(a: Float64Array, s: number, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) + s;
}
function subVS(a: Float64Array, s: number, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) - s;
}
function mulVS(a: Float64Array, s: number, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) * s;
}
function divVS(a: Float64Array, s: number, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) / s;
}
function powVS(a: Float64Array, s: number, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (a[i] as number) ** s;
}
function logV(a: Float64Array, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = Math.log(a[i] as number);
}
function sqrtV(a: Float64Array, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = Math.sqrt(a[i] as number);
}
