/**
 * regression: { operations: [{ x: column, y: column, model: 'Linear' | 'Poly', d?: integer, column: output }] }
 *
 * Least-squares fit of y = c0 + c1 x + ... + cd x^d over the rows where x and y are both
 * non-null and finite (Linear: d = 1, `d` may be left out or be 1; Poly: `d` is required,
 * 1..MAX_REGRESSION_DEGREE). Writes the Float64 column `column` with the fitted value at every
 * row's x (null where x is null; NaN where x is NaN), and records the fit in the table's schema
 * metadata under `rtl.regression.<column>` as JSON
 * `{ model, degree, x, y, rows, coefficients: [c0, c1, ..., cd] }` (c0 the constant term,
 * rows the number of rows fitted).
 *
 * Numerics: x is mapped to t = (x - center) / scale in [-1, 1], the Vandermonde matrix in t is
 * reduced to R by Householder QR a block of rows at a time (memory O(block x d), never the
 * normal equations), and R b = Q^T y is solved by back substitution. The output column is
 * evaluated in t (Horner), which stays accurate at any degree; the coefficients in x are the
 * same polynomial expanded, as exact as the monomial basis allows. A fit needs d + 1 distinct
 * x values: fewer is an RTL_ERR_BAD_PARAM naming `d` (or `x` for Linear).
 */
import type { Data, Float64 } from 'apache-arrow';
import { andValidity, zeroInvalid } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import { p, paramError } from '../schema.js';
import type { Infer, Schema as ParamSchema } from '../schema.js';
import { withMetadata } from './plot.js';

/** Highest polynomial degree a Poly fit may ask for. */
export const MAX_REGRESSION_DEGREE = 20;
/** Schema metadata key prefix: the fit of output column `c` is under `rtl.regression.c`. */
export const REGRESSION_METADATA_PREFIX = 'rtl.regression.';

const REGRESSION_MODELS = ['Linear', 'Poly'] as const;
export type RegressionModel = (typeof REGRESSION_MODELS)[number];

const shape = p.object({
  operations: p.array(
    p.object({
      x: p.column(),
      y: p.column(),
      model: p.oneOf(REGRESSION_MODELS),
      d: p.optional(p.number({ integer: true, min: 1, max: MAX_REGRESSION_DEGREE })),
      column: p.string({ minLength: 1 }),
    }),
    { min: 1 },
  ),
});

export type RegressionParams = Infer<typeof shape>;

/** `shape`, plus: Poly needs `d`; Linear takes no `d` other than 1. */
const regressionParams: ParamSchema<RegressionParams> = {
  ...shape,
  parse(value, where, path = '') {
    const out = shape.parse(value, where, path);
    const at = path === '' ? 'operations' : `${path}.operations`;
    out.operations.forEach((o, i) => {
      if (o.model === 'Poly' && o.d === undefined)
        throw paramError(
          where,
          `${at}[${i}].d`,
          `missing; model "Poly" needs the degree d, an integer from 1 to ${MAX_REGRESSION_DEGREE}`,
          { expected: `an integer from 1 to ${MAX_REGRESSION_DEGREE}` },
        );
      if (o.model === 'Linear' && o.d !== undefined && o.d !== 1)
        throw paramError(
          where,
          `${at}[${i}].d`,
          `model "Linear" fits degree 1, got d = ${o.d}; leave d out, or use model "Poly" for degree ${o.d}`,
          { expected: '1 or absent', got: String(o.d) },
        );
    });
    return out;
  },
};

/** The fit recorded in schema metadata. */
export interface RegressionFit {
  readonly model: RegressionModel;
  readonly degree: number;
  readonly x: string;
  readonly y: string;
  /** Rows fitted (x and y both non-null and finite). */
  readonly rows: number;
  /** c0 (constant), c1, ..., cd: y = sum of ck x^k. */
  readonly coefficients: number[];
}

/** Rows of the Vandermonde matrix reduced at a time. */
const BLOCK = 1024;

/**
 * Streaming least squares for y ~ sum b_k t^k: rows gather in a block below the current R
 * (column-major, p rows of R then BLOCK rows), and each full block is folded into R and Q^T y
 * by Householder reflections.
 */
export class PolyLeastSquares {
  readonly #p: number;
  /** Leading dimension: p rows of R, then the block. */
  readonly #ld: number;
  /** Column-major (p + BLOCK) x p. */
  readonly #w: Float64Array;
  readonly #z: Float64Array;
  #rows = 0;
  #total = 0;

  constructor(degree: number) {
    this.#p = degree + 1;
    this.#ld = this.#p + BLOCK;
    this.#w = new Float64Array(this.#ld * this.#p);
    this.#z = new Float64Array(this.#ld);
  }

  /** Rows added so far. */
  get rows(): number {
    return this.#total;
  }

  /**
   * Add the rows of one chunk where x and y are both valid (bit set in `valid`, or every row
   * when it is null) and finite, as t = (x - center) / scale.
   */
  addRows(
    x: Float64Array,
    y: Float64Array,
    valid: Uint8Array | null,
    center: number,
    scale: number,
  ): void {
    const p = this.#p;
    const ld = this.#ld;
    const w = this.#w;
    const z = this.#z;
    const n = x.length;
    let rows = this.#rows;
    let total = this.#total;
    for (let i = 0; i < n; i++) {
      if (valid !== null && (((valid[i >> 3] as number) >> (i & 7)) & 1) === 0) continue;
      const xi = x[i] as number;
      const yi = y[i] as number;
      if (xi - xi !== 0 || yi - yi !== 0) continue;
      const t = (xi - center) / scale;
      const r = p + rows;
      w[r] = 1;
      let power = t;
      for (let j = 1; j < p; j++) {
        w[j * ld + r] = power;
        power *= t;
      }
      z[r] = yi;
      total++;
      if (++rows === BLOCK) {
        this.#fold(rows);
        rows = 0;
      }
    }
    this.#rows = rows;
    this.#total = total;
  }

  /**
   * Fold the block's first `rows` rows into R: R stays upper triangular and z[0..p) becomes
   * Q^T y. Column j of R is zero below the diagonal, so the reflector of column j has one entry
   * in R (row j) and the rest in the block's column j, where it is kept while it is applied.
   */
  #fold(rows: number): void {
    const p = this.#p;
    const ld = this.#ld;
    const m = p + rows;
    const w = this.#w;
    const z = this.#z;
    for (let j = 0; j < p; j++) {
      const cj = j * ld;
      const ajj = w[cj + j] as number;
      let below = 0;
      for (let i = p; i < m; i++) {
        const a = w[cj + i] as number;
        below += a * a;
      }
      if (below === 0) continue; // the block's column j is zero: nothing to fold
      const norm = Math.sqrt(ajj * ajj + below);
      const alpha = ajj >= 0 ? -norm : norm;
      const vj = ajj - alpha;
      // v = (vj at row j, the block's column j); H = I - scale v v^T.
      const scale = 2 / (vj * vj + below);
      for (let c = j + 1; c < p; c++) {
        const cc = c * ld;
        let dot = vj * (w[cc + j] as number);
        for (let i = p; i < m; i++) dot += (w[cj + i] as number) * (w[cc + i] as number);
        const f = dot * scale;
        w[cc + j] = (w[cc + j] as number) - f * vj;
        for (let i = p; i < m; i++) w[cc + i] = (w[cc + i] as number) - f * (w[cj + i] as number);
      }
      let dot = vj * (z[j] as number);
      for (let i = p; i < m; i++) dot += (w[cj + i] as number) * (z[i] as number);
      const f = dot * scale;
      z[j] = (z[j] as number) - f * vj;
      // After the last reflector the block's z is the residual, which is not needed.
      if (j < p - 1)
        for (let i = p; i < m; i++) z[i] = (z[i] as number) - f * (w[cj + i] as number);
      w[cj + j] = alpha;
    }
  }

  /**
   * The coefficients b_0..b_d, or undefined when the rows do not determine them (fewer than
   * d + 1 distinct t values): some |R_jj| is negligible against |R_00| (the root of the row
   * count).
   */
  solve(): Float64Array | undefined {
    if (this.#rows > 0) this.#fold(this.#rows);
    this.#rows = 0;
    const p = this.#p;
    const ld = this.#ld;
    const w = this.#w;
    const z = this.#z;
    const tolerance = 1e-10 * Math.abs(w[0] as number);
    const b = new Float64Array(p);
    for (let j = p - 1; j >= 0; j--) {
      const rjj = w[j * ld + j] as number;
      if (!(Math.abs(rjj) > tolerance)) return undefined;
      let s = z[j] as number;
      for (let c = j + 1; c < p; c++) s -= (w[c * ld + j] as number) * (b[c] as number);
      b[j] = s / rjj;
    }
    return b;
  }
}

/** Coefficients in x of sum b_k ((x - center) / scale)^k. */
export function expandInX(b: Float64Array, center: number, scale: number): number[] {
  // Horner over polynomials: q <- q * (x - center) / scale + b_k.
  const d = b.length - 1;
  let q: number[] = [b[d] as number];
  for (let k = d - 1; k >= 0; k--) {
    const next = new Array<number>(q.length + 1).fill(0);
    for (let j = 0; j < q.length; j++) {
      const qj = q[j] as number;
      next[j + 1] = (next[j + 1] as number) + qj / scale;
      next[j] = (next[j] as number) - (qj * center) / scale;
    }
    next[0] = (next[0] as number) + (b[k] as number);
    q = next;
  }
  return q;
}

/** One chunk of the (x, y) rows: values, and where both are non-null (null: every row). */
interface PairChunk {
  readonly x: Float64Array;
  readonly y: Float64Array;
  readonly valid: Uint8Array | null;
}

function pairChunks(xs: readonly Data[], ys: readonly Data[]): PairChunk[] {
  return xs.map((xd, c) => {
    const yd = ys[c] as Data;
    return {
      x: toFloat64(xd),
      y: toFloat64(yd),
      valid: andValidity(xd.length, [xd, yd]).bitmap,
    };
  });
}

/** Min and max of x over the rows where x and y are both non-null and finite. */
function xRange(chunks: readonly PairChunk[]): { lo: number; hi: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const { x, y, valid } of chunks) {
    const n = x.length;
    for (let i = 0; i < n; i++) {
      if (valid !== null && (((valid[i >> 3] as number) >> (i & 7)) & 1) === 0) continue;
      const xi = x[i] as number;
      const yi = y[i] as number;
      if (xi - xi !== 0 || yi - yi !== 0) continue;
      if (xi < lo) lo = xi;
      if (xi > hi) hi = xi;
    }
  }
  return { lo, hi };
}

function predictChunk(xd: Data, b: Float64Array, center: number, scale: number): Data<Float64> {
  const xv = toFloat64(xd);
  const n = xv.length;
  const out = new Float64Array(n);
  const d = b.length - 1;
  const top = b[d] as number;
  if (d === 1) {
    const b0 = b[0] as number;
    for (let i = 0; i < n; i++) out[i] = b0 + top * (((xv[i] as number) - center) / scale);
  } else {
    for (let i = 0; i < n; i++) {
      const t = ((xv[i] as number) - center) / scale;
      let s = top;
      for (let k = d - 1; k >= 0; k--) s = s * t + (b[k] as number);
      out[i] = s;
    }
  }
  const validity = andValidity(n, [xd]);
  if (validity.bitmap !== null) zeroInvalid(out, validity.bitmap);
  return float64Data(out, validity);
}

export const regression = defineTableTask({
  name: 'regression',
  summary:
    'Least-squares fit of y on x (Linear, or Poly of degree d): adds the fitted values as `column`; the coefficients go in schema metadata "rtl.regression.<column>"',
  params: regressionParams,
  run(table, { operations }, ctx) {
    const set = ColumnSet.fromTable(table);
    const fits: Record<string, string> = {};
    operations.forEach((o, i) => {
      const at = `operations[${i}]`;
      const xs = set.numeric(o.x, `${at}.x`, ctx);
      const ys = set.numeric(o.y, `${at}.y`, ctx);
      const degree = o.model === 'Linear' ? 1 : (o.d ?? 1);
      const chunks = pairChunks(xs, ys);
      const { lo, hi } = xRange(chunks);
      const center = lo === hi ? lo : lo / 2 + hi / 2;
      const scale = lo === hi ? 1 : hi / 2 - lo / 2;
      const fit = new PolyLeastSquares(degree);
      for (const c of chunks) fit.addRows(c.x, c.y, c.valid, center, scale);
      const b = fit.solve();
      if (b === undefined)
        throw paramError(
          ctx,
          o.model === 'Linear' ? `${at}.x` : `${at}.d`,
          `a ${o.model} fit of degree ${degree} needs at least ${degree + 1} distinct values of x ` +
            `(${JSON.stringify(o.x)}) on rows where x and y (${JSON.stringify(o.y)}) are both non-null; ` +
            `the ${fit.rows} such row${fit.rows === 1 ? '' : 's'} have fewer` +
            (o.model === 'Poly' ? '; lower d' : ''),
          { rows: fit.rows },
        );
      set.setFloat64(
        o.column,
        xs.map((xd) => predictChunk(xd, b, center, scale)),
      );
      const result: RegressionFit = {
        model: o.model,
        degree,
        x: o.x,
        y: o.y,
        rows: fit.rows,
        coefficients: expandInX(b, center, scale),
      };
      fits[REGRESSION_METADATA_PREFIX + o.column] = JSON.stringify(result);
    });
    return withMetadata(set.toTable(), fits);
  },
});
