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
  return out;
}

// Module-level helpers rather than closures: this runs for every JSON body.
function closeFrame(result: JsonScan, f: Frame): void {
  if (f.array) {
    if (f.count > result.maxArrayLength) {
      result.maxArrayLength = f.count;
      result.longestArrayPath = f.path;
    }
  } else if (f.count > result.maxKeys) {
    result.maxKeys = f.count;
    result.widestObjectPath = f.path;
  }
}

/** Where a value that starts now sits (counting it if its container is an array). */
function valuePath(top: Frame | undefined, basePath: string): string {
  if (top === undefined) return basePath;
  if (top.array) {
    if (top.count === 0) top.count = 1;
    return top.path === '' ? '[]' : `${top.path}[]`;
  }
  return childPath(top.path, top.key);
}

function valueName(top: Frame | undefined): string {
  return top === undefined ? '' : top.array ? top.name : top.key;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function endsLiteral(c: number): boolean {
  return isSpace(c) || c === 0x22 || c === 0x2c || c === 0x3a || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d;
}

const WORDS = ['true', 'false', 'null'];

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

/**
 * Whether text[from, to) is a number or true/false/null (at the very end of the text, a prefix
 * of one: a cut-off body), without slicing.
 */
function validLiteral(text: string, from: number, to: number): boolean {
  const c = text.charCodeAt(from);
  if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
    for (let k = from + 1; k < to; k++) if (!isNumberChar(text.charCodeAt(k))) return false;
    return true;
  }
  const len = to - from;
  const atEnd = to === text.length;
  for (const w of WORDS) {
    if (len === w.length ? text.startsWith(w, from) : atEnd && len < w.length && w.startsWith(text.slice(from, to))) return true;
  }
  return false;
}

export function scanJson(text: string, basePath = ''): JsonScan {
  const segments: JsonSegment[] = [];
  const stack: Frame[] = [];
  const result: JsonScan = { segments, maxDepth: 0, maxArrayLength: 0, maxKeys: 0, deepestPath: basePath, longestArrayPath: basePath, widestObjectPath: basePath, clean: true };

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
        segments.push({ path: valuePath(top, basePath), key: false, name: valueName(top), text: s });
      }
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const top = stack[stack.length - 1];
      const path = valuePath(top, basePath);
      stack.push({ array: c === 0x5b, count: 0, path, name: valueName(top), key: '', expectKey: c === 0x7b });
      if (stack.length > result.maxDepth) {
        result.maxDepth = stack.length;
        result.deepestPath = path;
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      const f = stack.pop();
      if (f !== undefined) closeFrame(result, f);
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
      if (result.clean && !validLiteral(text, i, j)) result.clean = false;
      i = j;
      continue;
    }
    i++;
  }
  for (const f of stack) closeFrame(result, f);
  return result;
}

/**
 * Whether JSON text nests objects and arrays deeper than `max`, by one pass over the text that
 * stops at the first level too deep. The server asks before parsing: a parsed value nested
 * thousands of levels deep overflows the stack of every recursive walk over it (JSON.stringify,
 * validation, the database driver), so it must never be built.
 */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}
