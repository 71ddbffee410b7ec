/**
 * Correctly rounded decimal-to-double conversion of up to 19 significant digits without
 * building a string, for the CSV reader's hot loop. The mantissa is held exactly as a sum of
 * two doubles, multiplied or divided by an exact power of ten with error-free products
 * (Dekker), and the result is returned only when no rounding boundary lies near it; in the
 * rare near-tie cases (about one in a billion) the caller falls back to `Number()`.
 *
 * ```ts
 * const v = parseDecimal(bytes, start, end); // NaN: not handled here, use Number(text)
 * ```
 */

const P10 = Float64Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const SPLIT = 134217729; // 2^27 + 1

// Scratch for the two-result helpers (no allocation per call).
let lo = 0;
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
/** POW2[e] = 2^(e - 1075): the ulp of a normal double whose exponent field is e. */
const POW2 = Float64Array.from({ length: 2048 }, (_, e) => 2 ** (e - 1075));
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** a * b exactly: returns the rounded product, sets `lo` to the error. */
function twoProduct(a: number, b: number): number {
  const p = a * b;
  let c = SPLIT * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = SPLIT * b;
  const bh = c - (c - b);
  const bl = b - bh;
  lo = ah * bh - p + ah * bl + al * bh + al * bl;
  return p;
}

/** The unit in the last place of a positive normal double; 0 for a power of two (its ulp below differs). */
function ulpOf(x: number): number {
  f64[0] = x;
  const hi = u32[HI] as number;
  const low = u32[1 - HI] as number;
  if ((hi & 0xfffff) === 0 && low === 0) return 0;
  return POW2[(hi >>> 20) & 0x7ff] as number;
}

/** Distance of `frac` from the nearest k + 1/2, for the near-tie test. */
function tieDistance(frac: number): number {
  const f = frac - Math.floor(frac);
  return Math.abs(f - 0.5);
}

const NEAR_TIE = 2 ** -30;

/**
 * The double nearest to the decimal in `bytes[start, end)` (digits, one optional `.`, an
 * optional exponent `e[+-]ddd`; no sign), or NaN when it has more than 19 significant digits
 * (not all zeros after them), a power of ten beyond +-22 after scaling, or falls near a tie.
 */
export function parseDecimal(bytes: Uint8Array, start: number, end: number): number {
  let a = 0; // the first 15 significant digits
  let b = 0; // the next (up to 4)
  let kb = 0; // digits in b
  let sig = 0;
  let scale = 0;
  let frac = false;
  let i = start;
  for (; i < end; i++) {
    const c = bytes[i] as number;
    if (c === 46) {
      frac = true;
      continue;
    }
    if (c < 48 || c > 57) break;
    const d = c - 48;
    if (sig === 0 && d === 0) {
      if (frac) scale--;
      continue;
    }
    if (sig < 15) a = a * 10 + d;
    else if (sig < 19) {
      b = b * 10 + d;
      kb++;
    } else {
      if (d !== 0) return NaN;
      if (!frac) scale++;
      sig++;
      continue;
    }
    sig++;
    if (frac) scale--;
  }
  if (i < end) {
    // exponent
    i++;
    let neg = false;
    if (bytes[i] === 45) {
      neg = true;
      i++;
    } else if (bytes[i] === 43) i++;
    let e = 0;
    for (; i < end; i++) e = e * 10 + ((bytes[i] as number) - 48);
    if (e > 400) return NaN;
    scale += neg ? -e : e;
  }
  if (sig === 0) return 0;
  return decimalFromParts(a, b, kb, scale);
}

/**
 * (a * 10^kb + b) * 10^scale correctly rounded, for a < 10^15, b < 10^kb, kb <= 4; NaN when
 * |scale| > 22 or the value falls near a rounding boundary (use `Number()` then).
 */
export function decimalFromParts(a: number, b: number, kb: number, scale: number): number {
  if (scale < -22 || scale > 22) return NaN;
  const whole = a * (P10[kb] as number) + b;
  if (whole < 9007199254740992)
    return scale < 0 ? whole / (P10[-scale] as number) : whole * (P10[scale] as number);
  // m = a * 10^kb + b exactly, as mh + ml.
  const p = twoProduct(a, P10[kb] as number);
  const pe = lo;
  const mh = p + b;
  const bb = mh - p;
  const se = p - (mh - bb) + (b - bb);
  const ml = pe + se;
  if (scale === 0 && ml === 0) return mh;
  let y: number;
  let rest: number;
  if (scale >= 0) {
    const P = P10[scale] as number;
    y = twoProduct(mh, P);
    rest = lo + ml * P;
  } else {
    const D = P10[-scale] as number;
    y = mh / D;
    const q = twoProduct(y, D);
    rest = (mh - q - lo + ml) / D;
  }
  // The first estimate may be an ulp or so off (m was rounded to mh): the answer is y + rest
  // rounded, unless a rounding boundary (y + (k + 1/2) ulp) is near y + rest or y + rest
  // leaves y's binade (where the spacing changes).
  const ulp = ulpOf(y);
  if (ulp === 0) return NaN;
  const f = rest / ulp;
  if (f > 2 || f < -2 || tieDistance(f) < NEAR_TIE) return NaN;
  const z = y + rest;
  return ulpOf(z) === ulp ? z : NaN;
}
