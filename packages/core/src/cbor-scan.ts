/**
 * A walk over the structure of CBOR bytes, before any decoder allocates for them. [P-2.5]
 *
 * It checks that the bytes are one well-formed CBOR item and nothing after it, that maps,
 * arrays and tags nest at most `maxDepth` deep, that no container claims more items (and no
 * string more bytes) than the bytes that are left, and that only allowed tags appear. Tags
 * change what a decoder builds (shared references, record definitions a decoder remembers
 * across messages, typed arrays), so a header allows none and a payload value a few plain ones.
 *
 * ```ts
 * scanCbor(Uint8Array.of(0x82, 0x01, 0x02), { maxDepth: 4, tags: VALUE_TAGS }); // undefined: ok
 * scanCbor(Uint8Array.of(0x9a, 0xff, 0xff, 0xff, 0xff), { maxDepth: 4, tags: VALUE_TAGS });
 * // { offset: 0, kind: 'malformed', message: 'an array claims 4294967295 items, but 0 bytes are left' }
 * ```
 */

export interface CborScanOptions {
  /** Most nested maps, arrays and tags. */
  readonly maxDepth: number;
  /** Tag numbers allowed anywhere in the item. */
  readonly tags: ReadonlySet<number>;
}

export interface CborProblem {
  /** Byte offset of the item at fault. */
  readonly offset: number;
  readonly message: string;
  /** `depth`: a limit was passed; `tag`: a tag not allowed; `malformed`: not CBOR. */
  readonly kind: 'depth' | 'tag' | 'malformed';
}

/** Headers carry no tags at all. [P-2.2] */
export const NO_TAGS: ReadonlySet<number> = new Set();

/**
 * Tags a payload value may carry: dates (0, 1), bignums (2, 3), typed arrays (64..87) and
 * sets (258). Everything this peer's encoder writes for plain data, nothing stateful.
 */
export const VALUE_TAGS: ReadonlySet<number> = new Set([
  0,
  1,
  2,
  3,
  ...Array.from({ length: 24 }, (_, i) => 64 + i),
  258,
]);

const MAJOR_NAMES = ['', '', 'a byte string', 'a text string', 'an array', 'a map', 'a tag', ''];
/** Stack markers for containers of unknown length, closed by a break (0xff). */
const INDEFINITE = -1;
const INDEFINITE_BYTES = -2;
const INDEFINITE_TEXT = -3;
/** A tag: its one item is to come. Tags do not count as a level (a decoded tag is a leaf). */
const TAG = -4;

/** Returns undefined when `bytes` pass, else where and what is wrong. Never throws. */
export function scanCbor(bytes: Uint8Array, options: CborScanOptions): CborProblem | undefined {
  const end = bytes.length;
  const { maxDepth, tags } = options;
  /** Per open container: items still to come (> 0), or an INDEFINITE marker. */
  const stack: number[] = [];
  let pos = 0;
  /** Set once the outermost item is complete (an object: closures set it). */
  const root = { done: false };
  /** Open tags on the stack. */
  let openTags = 0;
  const depth = (): number => stack.length - openTags;

  const itemDone = (): void => {
    for (;;) {
      const n = stack.length;
      if (n === 0) {
        root.done = true;
        return;
      }
      const top = stack[n - 1] as number;
      if (top === TAG) {
        stack.pop();
        openTags--;
        continue;
      }
      if (top < 0) return;
      if (top > 1) {
        stack[n - 1] = top - 1;
        return;
      }
      stack.pop();
    }
  };

  while (!root.done) {
    const at = pos;
    if (pos >= end)
      return {
        offset: at,
        kind: 'malformed',
        message:
          stack.length === 0
            ? 'no CBOR item: the bytes are empty'
            : `truncated: ${String(stack.length)} container(s) still open at the end`,
      };
    const initial = bytes[pos++] as number;
    const major = initial >> 5;
    const info = initial & 31;
    const top = stack.length > 0 ? (stack[stack.length - 1] as number) : 0;

    if (initial === 0xff) {
      if (top >= 0 || top === TAG)
        return {
          offset: at,
          kind: 'malformed',
          message: 'a break (0xff) outside an indefinite item',
        };
      stack.pop();
      itemDone();
      continue;
    }
    if (top === INDEFINITE_BYTES || top === INDEFINITE_TEXT) {
      const want = top === INDEFINITE_BYTES ? 2 : 3;
      if (major !== want || info === 31)
        return {
          offset: at,
          kind: 'malformed',
          message: `a chunk of an indefinite ${MAJOR_NAMES[want] ?? ''} must be ${MAJOR_NAMES[want] ?? ''} of known length`,
        };
    }

    let value: number;
    if (info < 24) value = info;
    else if (info <= 27) {
      const size = 1 << (info - 24);
      if (end - pos < size)
        return {
          offset: at,
          kind: 'malformed',
          message: `truncated: the item needs ${String(size)} more bytes`,
        };
      value = 0;
      for (let i = 0; i < size; i++) value = value * 256 + (bytes[pos + i] as number);
      pos += size;
    } else if (info === 31) {
      if (major === 2 || major === 3) {
        if (depth() >= maxDepth) return tooDeep(at, maxDepth);
        stack.push(major === 2 ? INDEFINITE_BYTES : INDEFINITE_TEXT);
        continue;
      }
      if (major === 4 || major === 5) {
        if (depth() >= maxDepth) return tooDeep(at, maxDepth);
        stack.push(INDEFINITE);
        continue;
      }
      return {
        offset: at,
        kind: 'malformed',
        message: `initial byte 0x${initial.toString(16)} is not well-formed CBOR`,
      };
    } else {
      return {
        offset: at,
        kind: 'malformed',
        message: `initial byte 0x${initial.toString(16)} uses a reserved length (28..30)`,
      };
    }

    switch (major) {
      case 0:
      case 1:
        itemDone();
        break;
      case 2:
      case 3:
        if (value > end - pos)
          return {
            offset: at,
            kind: 'malformed',
            message: `${MAJOR_NAMES[major] ?? ''} claims ${String(value)} bytes, but ${String(end - pos)} are left`,
          };
        pos += value;
        itemDone();
        break;
      case 4:
      case 5: {
        const items = major === 5 ? value * 2 : value;
        if (items > end - pos)
          return {
            offset: at,
            kind: 'malformed',
            message: `${MAJOR_NAMES[major] ?? ''} claims ${String(value)} ${major === 5 ? 'entries' : 'items'}, but ${String(end - pos)} bytes are left`,
          };
        if (depth() >= maxDepth) return tooDeep(at, maxDepth);
        if (items === 0) {
          itemDone();
          break;
        }
        stack.push(items);
        break;
      }
      case 6:
        if (!tags.has(value))
          return {
            offset: at,
            kind: 'tag',
            message: `tag ${String(value)} is not allowed (allowed: ${describeTags(tags)})`,
          };
        stack.push(TAG);
        openTags++;
        break;
      default:
        // Simple values and floats: the bytes were skipped above.
        itemDone();
    }
  }
  if (pos !== end)
    return {
      offset: pos,
      kind: 'malformed',
      message: `${String(end - pos)} byte(s) after the end of the CBOR item`,
    };
  return undefined;
}

function tooDeep(offset: number, maxDepth: number): CborProblem {
  return { offset, kind: 'depth', message: `nests deeper than ${String(maxDepth)} levels` };
}

function describeTags(tags: ReadonlySet<number>): string {
  if (tags === VALUE_TAGS) return 'dates 0-1, bignums 2-3, typed arrays 64-87, sets 258';
  return tags.size === 0 ? 'none here' : [...tags].join(', ');
}
