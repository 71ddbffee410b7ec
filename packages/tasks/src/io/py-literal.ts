/**
 * A reader for the small part of Python's literal syntax that NumPy writes: the `.npy` header
 * dict and dtype descriptions (`[('x', '<f8'), ('y', '<i8')]`). Strings, integers, floats,
 * True/False/None, tuples, lists and dicts with string keys.
 *
 * ```ts
 * parsePyLiteral("{'descr': '<f8', 'shape': (3,), }"); // { descr: '<f8', shape: [3] }
 * ```
 * Gotcha: tuples become arrays (as lists do), and a parenthesised single value without a
 * comma is that value, as in Python.
 */

export type PyValue = string | number | boolean | null | PyValue[] | PyDict;
export interface PyDict {
  readonly [key: string]: PyValue;
}

/** Thrown on a syntax error; `at` is the character index in the parsed text. */
export class PyLiteralError extends Error {
  readonly at: number;
  constructor(message: string, at: number) {
    super(message);
    this.at = at;
  }
}

const ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '0': '\0',
  '\\': '\\',
  "'": "'",
  '"': '"',
};

class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(expected: string): never {
    const got =
      this.pos >= this.text.length
        ? 'the end'
        : JSON.stringify(this.text.slice(this.pos, this.pos + 12));
    throw new PyLiteralError(`expected ${expected} at character ${this.pos}, got ${got}`, this.pos);
  }

  skipSpace(): void {
    const t = this.text;
    while (this.pos < t.length && ' \t\r\n'.includes(t[this.pos] as string)) this.pos++;
  }

  eat(ch: string): boolean {
    this.skipSpace();
    if (this.text[this.pos] === ch) {
      this.pos++;
      return true;
    }
    return false;
  }

  value(): PyValue {
    this.skipSpace();
    const t = this.text;
    const c = t[this.pos];
    if (c === undefined) this.fail('a value');
    if (c === '{') return this.dict();
    if (c === '[') return this.sequence('[', ']');
    if (c === '(') return this.sequence('(', ')');
    if (c === "'" || c === '"') return this.string();
    if ((c === 'b' || c === 'u') && (t[this.pos + 1] === "'" || t[this.pos + 1] === '"')) {
      this.pos++;
      return this.string();
    }
    const word = /^(True|False|None)\b/.exec(t.slice(this.pos, this.pos + 6));
    if (word !== null) {
      this.pos += (word[1] as string).length;
      return word[1] === 'True' ? true : word[1] === 'False' ? false : null;
    }
    const num = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?L?/.exec(t.slice(this.pos, this.pos + 64));
    if (num !== null) {
      this.pos += num[0].length;
      return Number(num[0].replace(/L$/, ''));
    }
    return this.fail('a value (string, number, tuple, list or dict)');
  }

  string(): string {
    const t = this.text;
    const quote = t[this.pos] as string;
    let out = '';
    let i = this.pos + 1;
    for (;;) {
      const c = t[i];
      if (c === undefined) {
        this.pos = i;
        this.fail(`the closing ${quote}`);
      }
      if (c === quote) break;
      if (c === '\\') {
        const e = t[i + 1] ?? '';
        if (e === 'x' || e === 'u') {
          const len = e === 'x' ? 2 : 4;
          const hex = t.slice(i + 2, i + 2 + len);
          if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) {
            this.pos = i;
            this.fail(`a \\${e} escape with ${len} hex digits`);
          }
          out += String.fromCharCode(parseInt(hex, 16));
          i += 2 + len;
          continue;
        }
        out += ESCAPES[e] ?? `\\${e}`;
        i += 2;
        continue;
      }
      out += c;
      i++;
    }
    this.pos = i + 1;
    return out;
  }

  sequence(open: string, close: string): PyValue {
    this.pos++;
    const items: PyValue[] = [];
    let comma = false;
    for (;;) {
      if (this.eat(close)) break;
      items.push(this.value());
      comma = this.eat(',');
      if (!comma) {
        if (this.eat(close)) break;
        this.fail(`"," or "${close}"`);
      }
    }
    if (open === '(' && items.length === 1 && !comma) return items[0] as PyValue;
    return items;
  }

  dict(): PyDict {
    this.pos++;
    const out: Record<string, PyValue> = Object.create(null) as Record<string, PyValue>;
    for (;;) {
      if (this.eat('}')) break;
      this.skipSpace();
      const keyAt = this.pos;
      const key = this.value();
      if (typeof key !== 'string') {
        this.pos = keyAt;
        this.fail('a string key');
      }
      if (!this.eat(':')) this.fail('":"');
      out[key] = this.value();
      if (!this.eat(',')) {
        if (this.eat('}')) break;
        this.fail('"," or "}"');
      }
    }
    return out;
  }
}

/** Parse one Python literal filling all of `text` (whitespace around it allowed). */
export function parsePyLiteral(text: string): PyValue {
  const r = new Reader(text);
  const v = r.value();
  r.skipSpace();
  if (r.pos < text.length) r.fail('the end of the literal');
  return v;
}

/** Python's repr of a str (the quotes it picks, the escapes it writes). */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}
