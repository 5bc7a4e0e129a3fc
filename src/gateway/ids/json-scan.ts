/**
 * A tolerant single-pass JSON scanner for the IDS: it pulls out every key and string value
 * (escapes decoded, so `\u003cscript` is seen as `<script`) with the path it sits at, and measures
 * depth, array lengths and key counts. It never throws and works on truncated or invalid JSON,
 * which is what an inspected prefix of a large body is; numbers and literals are skipped.
 */

export interface JsonSegment {
  /** e.g. `data.resident.name`, `data.tags[]`; capped in length. */
  path: string;
  /** The segment is an object key, not a value; its text is `parent.key` when it has a parent. */
  key: boolean;
  /** The nearest property name: the key itself, or the key the value (or its array) sits under. */
  name: string;
  text: string;
}

export interface JsonScan {
  segments: JsonSegment[];
  maxDepth: number;
  maxArrayLength: number;
  maxKeys: number;
  /** Where the deepest / longest / widest container is, for the finding's sample. */
  deepestPath: string;
  longestArrayPath: string;
  widestObjectPath: string;
  /**
   * Nothing but JSON tokens outside the strings. When false (`{"a":1} union select …`), the
   * caller must look at the whole text too, since the strings alone do not show the payload.
   */
  clean: boolean;
}

interface Frame {
  array: boolean;
  /** Values in an array, keys in an object. */
  count: number;
  path: string;
  /** The key this container sits under in its parent. */
  name: string;
  /** Objects: the current key, and whether the next string is a key. */
  key: string;
  expectKey: boolean;
}

const MAX_PATH = 120;
const MAX_KEY_IN_PATH = 40;

function childPath(base: string, key: string): string {
  const k = key.length > MAX_KEY_IN_PATH ? `${key.slice(0, MAX_KEY_IN_PATH)}…` : key;
  const p = base === '' ? k : `${base}.${k}`;
  return p.length > MAX_PATH ? `${p.slice(0, MAX_PATH)}…` : p;
}

const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' };

function unescapeJson(raw: string): string {
  let out: string;
  try {
    out = JSON.parse(`"${raw}"`) as string;
  } catch {
    out = raw.replace(/\\(?:u([0-9a-fA-F]{4})|([\s\S]))?/g, (_m: string, hex: string | undefined, ch: string | undefined) => {
      if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16));
      if (ch === undefined) return '';
      return SIMPLE_ESCAPES[ch] ?? ch;
    });
  }
  return out.indexOf('\uffff') === -1 ? out : out.replaceAll('\uffff', '\ufffd');
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function endsLiteral(c: number): boolean {
  return isSpace(c) || c === 0x22 || c === 0x2c || c === 0x3a || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d;
}

const NUMBER_CHARS = /^-?[0-9][0-9.eE+-]*$|^-$/;
const WORDS = ['true', 'false', 'null'];

/** A number or true/false/null; at the very end of the text, a prefix of one (a cut-off body). */
function validLiteral(run: string, atEnd: boolean): boolean {
  if (NUMBER_CHARS.test(run)) return true;
  return WORDS.some((w) => w === run || (atEnd && w.startsWith(run)));
}

export function scanJson(text: string, basePath = ''): JsonScan {
  const segments: JsonSegment[] = [];
  const stack: Frame[] = [];
  const result: JsonScan = { segments, maxDepth: 0, maxArrayLength: 0, maxKeys: 0, deepestPath: basePath, longestArrayPath: basePath, widestObjectPath: basePath, clean: true };
  const close = (f: Frame) => {
    if (f.array) {
      if (f.count > result.maxArrayLength) {
        result.maxArrayLength = f.count;
        result.longestArrayPath = f.path;
      }
    } else if (f.count > result.maxKeys) {
      result.maxKeys = f.count;
      result.widestObjectPath = f.path;
    }
  };
  /** Where a value that starts now sits, counting it if its container is an array. */
  const placeValue = (): { path: string; name: string } => {
    const top = stack[stack.length - 1];
    if (top === undefined) return { path: basePath, name: '' };
    if (top.array) {
      if (top.count === 0) top.count = 1;
      return { path: `${top.path}[]`, name: top.name };
    }
    return { path: childPath(top.path, top.key), name: top.key };
  };

  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = n;
      let from = i + 1;
      for (;;) {
        const q = text.indexOf('"', from);
        if (q === -1) break;
        let b = q - 1;
        let slashes = 0;
        while (b > i && text.charCodeAt(b) === 0x5c) {
          slashes++;
          b--;
        }
        if (slashes % 2 === 0) {
          end = q;
          break;
        }
        from = q + 1;
      }
      let s = text.slice(i + 1, end);
      if (s.indexOf('\\') !== -1) s = unescapeJson(s);
      const top = stack[stack.length - 1];
      if (top !== undefined && !top.array && top.expectKey) {
        top.key = s;
        top.count++;
        top.expectKey = false;
        // A key is seen with its parent's name (`constructor.prototype`), so nesting tricks show.
        segments.push({ path: childPath(top.path, s), key: true, name: s, text: top.name === '' ? s : `${top.name}.${s}` });
      } else {
        const at = placeValue();
        segments.push({ path: at.path, key: false, name: at.name, text: s });
      }
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const at = placeValue();
      stack.push({ array: c === 0x5b, count: 0, path: at.path, name: at.name, key: '', expectKey: c === 0x7b });
      if (stack.length > result.maxDepth) {
        result.maxDepth = stack.length;
        result.deepestPath = at.path;
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      const f = stack.pop();
      if (f !== undefined) close(f);
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top !== undefined) {
        if (top.array) top.count++;
        else top.expectKey = true;
      }
    } else if (c === 0x3a /* : */) {
      const top = stack[stack.length - 1];
      if (top !== undefined && !top.array) top.expectKey = false;
    } else if (!isSpace(c)) {
      // A number or literal: counted once as an array element, checked, skipped.
      const top = stack[stack.length - 1];
      if (top !== undefined && top.array && top.count === 0) top.count = 1;
      let j = i + 1;
      while (j < n && !endsLiteral(text.charCodeAt(j))) j++;
      if (result.clean && !validLiteral(text.slice(i, Math.min(j, i + 40)), j === n)) result.clean = false;
      i = j;
      continue;
    }
    i++;
  }
  for (const f of stack) close(f);
  return result;
}
