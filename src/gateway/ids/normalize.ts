import { isUtf8 } from 'node:buffer';

/**
 * Decoding before matching (R12.2 IDS). Attackers hide payloads behind encodings the application
 * or a browser undoes later; every rule is written against the decoded, NFKC-folded, lower-cased
 * text, so one rule covers `<script>`, `%3Cscript%3E`, `%253Cscript%253E`, `&#x3c;script&gt;`
 * and `＜ＳＣＲＩＰＴ＞` alike. All functions here do work linear in their input.
 */

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/**
 * Joins the fields of one target into one string for a single prefilter pass. It never occurs
 * in a field: raw occurrences become U+FFFD, and so does `&#1;`. A one-byte character keeps
 * ASCII text in V8's fast one-byte representation.
 */
export const FIELD_SEPARATOR = '\u0001';

export interface PercentDecoded {
  text: string;
  /** A `%` not followed by two hex digits on the wire (kept as is). */
  invalidPercent: boolean;
  /** Decoded bytes that are not UTF-8 (kept as their `%XX` text, e.g. the overlong `%c0%ae`). */
  invalidUtf8: boolean;
  /** A second round of decoding changed the text: the value was encoded twice. */
  doubleEncoded: boolean;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** UTF-8 bytes of a `%XX%XX…` run; bytes that do not form UTF-8 stay as their `%XX` text. */
function decodeRun(bytes: number[], raw: string): { text: string; invalid: boolean } {
  let text = '';
  let invalid = false;
  let k = 0;
  const n = bytes.length;
  while (k < n) {
    const b0 = bytes[k]!;
    if (b0 < 0x80) {
      text += String.fromCharCode(b0);
      k++;
      continue;
    }
    let need = 0;
    let lo = 0x80;
    let hi = 0xbf;
    let cp = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      cp = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      cp = b0 & 0x0f;
      if (b0 === 0xe0) lo = 0xa0;
      if (b0 === 0xed) hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      cp = b0 & 0x07;
      if (b0 === 0xf0) lo = 0x90;
      if (b0 === 0xf4) hi = 0x8f;
    }
    let ok = need > 0 && k + need < n;
    if (ok) {
      for (let m = 1; m <= need; m++) {
        const b = bytes[k + m];
        if (b === undefined || b < (m === 1 ? lo : 0x80) || b > (m === 1 ? hi : 0xbf)) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (b & 0x3f);
      }
    }
    if (ok) {
      text += String.fromCodePoint(cp);
      k += need + 1;
    } else {
      text += raw.slice(k * 3, k * 3 + 3);
      invalid = true;
      k++;
    }
  }
  return { text, invalid };
}

/** One round of percent-decoding; `+` becomes a space when `plusAsSpace` (query strings, forms). */
export function percentDecodeOnce(s: string, plusAsSpace: boolean): { text: string; invalidPercent: boolean; invalidUtf8: boolean } {
  if (s.indexOf('%') === -1) {
    return { text: plusAsSpace && s.indexOf('+') !== -1 ? s.replaceAll('+', ' ') : s, invalidPercent: false, invalidUtf8: false };
  }
  const n = s.length;
  const literal = (from: number, to: number) => {
    const chunk = s.slice(from, to);
    return plusAsSpace && chunk.indexOf('+') !== -1 ? chunk.replaceAll('+', ' ') : chunk;
  };
  let out = '';
  let last = 0;
  let i = s.indexOf('%');
  let invalidPercent = false;
  let invalidUtf8 = false;
  const bytes: number[] = [];
  while (i !== -1) {
    let j = i;
    bytes.length = 0;
    while (j + 2 < n && s.charCodeAt(j) === 0x25) {
      const h1 = hexValue(s.charCodeAt(j + 1));
      const h2 = hexValue(s.charCodeAt(j + 2));
      if (h1 < 0 || h2 < 0) break;
      bytes.push(h1 * 16 + h2);
      j += 3;
    }
    if (bytes.length === 0) {
      invalidPercent = true;
      i = s.indexOf('%', i + 1);
      continue;
    }
    out += literal(last, i);
    const run = decodeRun(bytes, s.slice(i, j));
    out += run.text;
    if (run.invalid) invalidUtf8 = true;
    last = j;
    i = s.indexOf('%', j);
  }
  out += literal(last, n);
  return { text: out, invalidPercent, invalidUtf8 };
}

const STILL_ENCODED = /%[0-9a-f]{2}/i;

/**
 * Percent-decoding as an application would see it, repeated once more when the result still
 * holds `%XX` (double encoding). Only the first round is on the wire, so only it raises flags:
 * a decoded note that says "50% off" is not a protocol violation.
 */
export function percentDecode(s: string, plusAsSpace: boolean): PercentDecoded {
  const first = percentDecodeOnce(s, plusAsSpace);
  // (No object spread here: it costs ~0.5 µs a call on Node 20, and this runs for every field.)
  if (first.text.indexOf('%') === -1 || !STILL_ENCODED.test(first.text)) {
    return { text: first.text, invalidPercent: first.invalidPercent, invalidUtf8: first.invalidUtf8, doubleEncoded: false };
  }
  const second = percentDecodeOnce(first.text, false);
  return { text: second.text, invalidPercent: first.invalidPercent, invalidUtf8: first.invalidUtf8, doubleEncoded: second.text !== first.text };
}

const NAMED_ENTITIES: Record<string, string> = {
  lt: '<', gt: '>', amp: '&', quot: '"', apos: "'", nbsp: '\u00a0', sol: '/', bsol: '\\', colon: ':', semi: ';',
  lpar: '(', rpar: ')', lsqb: '[', rsqb: ']', lbrack: '[', rbrack: ']', lcub: '{', rcub: '}', lbrace: '{', rbrace: '}',
  excl: '!', num: '#', dollar: '$', percnt: '%', period: '.', comma: ',', plus: '+', ast: '*', midast: '*', equals: '=',
  quest: '?', verbar: '|', vert: '|', grave: '`', hat: '^', lowbar: '_', tab: '\t', newline: '\n', commat: '@',
};
/** Entities browsers decode even without the `;`. */
const LEGACY_ENTITIES = new Set(['lt', 'gt', 'amp', 'quot', 'apos']);
const ENTITY_RE = /&(?:#[xX]([0-9a-fA-F]{1,6})|#(\d{1,7})|([A-Za-z][A-Za-z0-9]{1,31}))(;?)/g;

function codePointText(cp: number): string {
  if (cp <= 1 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
  return String.fromCodePoint(cp);
}

function decodeEntitiesOnce(s: string): string {
  return s.replace(ENTITY_RE, (whole: string, hex: string | undefined, dec: string | undefined, name: string | undefined, semi: string) => {
    if (hex !== undefined) return codePointText(parseInt(hex, 16));
    if (dec !== undefined) return codePointText(parseInt(dec, 10));
    const key = (name ?? '').toLowerCase();
    const value = NAMED_ENTITIES[key];
    if (value === undefined || (semi === '' && !LEGACY_ENTITIES.has(key))) return whole;
    return value;
  });
}

/** HTML character references (`&#x3c;`, `&#60;`, `&lt;`), decoded up to twice (`&amp;lt;`). */
export function decodeHtmlEntities(s: string): string {
  if (s.indexOf('&') === -1) return s;
  const once = decodeEntitiesOnce(s);
  return once === s || once.indexOf('&') === -1 ? once : decodeEntitiesOnce(once);
}

/** Characters NFKC could change (none of ASCII does). */
const NON_ASCII = /[^\x00-\x7f]/;

export interface Folded {
  text: string;
  htmlEntities: boolean;
  nfkc: boolean;
}

/**
 * Entities, Unicode NFKC (full-width `＜ｓｃｒｉｐｔ＞` → `<script>`, half-width kana → kana) and
 * lower-casing. ASCII-only text skips NFKC: it is already in that form.
 */
export function foldText(s: string): Folded {
  let text = s;
  let htmlEntities = false;
  if (text.indexOf('&') !== -1) {
    const d = decodeHtmlEntities(text);
    htmlEntities = d !== text;
    text = d;
  }
  let nfkc = false;
  if (NON_ASCII.test(text)) {
    const n = text.normalize('NFKC');
    if (n !== text) {
      nfkc = true;
      text = n;
      // Full-width `＆ｌｔ；` only becomes an entity after NFKC.
      if (text.indexOf('&') !== -1) {
        const d = decodeHtmlEntities(text);
        htmlEntities ||= d !== text;
        text = d;
      }
    }
  }
  return { text: text.toLowerCase(), htmlEntities, nfkc };
}

export interface NormalizeOptions {
  /** Percent-decode (URLs, forms, headers); JSON body strings are not. */
  percent: boolean;
  /** `+` means a space (query strings and form bodies). */
  plusAsSpace?: boolean;
}

export interface Normalized extends Folded {
  invalidPercent: boolean;
  invalidUtf8: boolean;
  doubleEncoded: boolean;
}

/** The whole pipeline for one value: percent (≤ 2 rounds) → entities → NFKC → lower case. */
export function normalizeValue(s: string, opts: NormalizeOptions): Normalized {
  const p = opts.percent ? percentDecode(s, opts.plusAsSpace === true) : { text: s, invalidPercent: false, invalidUtf8: false, doubleEncoded: false };
  const f = foldText(p.text);
  return { text: f.text, htmlEntities: f.htmlEntities, nfkc: f.nfkc, invalidPercent: p.invalidPercent, invalidUtf8: p.invalidUtf8, doubleEncoded: p.doubleEncoded };
}

/** Replaces `find` … `end` spans with a space, scanning once; an unterminated span stops the scan. */
function stripSpans(s: string, find: (from: number) => number, endOf: (start: number) => number, keep?: (start: number, end: number) => string): string {
  let out = '';
  let last = 0;
  let i = find(0);
  while (i !== -1) {
    const end = endOf(i);
    if (end === -1) break;
    const kept = keep ? keep(i, end) : '';
    out += s.slice(last, i) + (kept === '' ? ' ' : ` ${kept} `);
    last = end;
    i = find(end);
  }
  return last === 0 ? s : out + s.slice(last);
}

/**
 * The text SQL rules see: block comments become a space (`UNION/**\/SELECT` → `union select`),
 * MySQL version comments keep their content (`/*!50000union*\/` → `union`), and `#`/`--` line
 * comments that end in a newline disappear (`union%23%0aselect`).
 */
export function sqlView(s: string): string {
  let t = s;
  if (t.indexOf('/*') !== -1 && t.indexOf('*/') !== -1) {
    t = stripSpans(
      t,
      (from) => t.indexOf('/*', from),
      (start) => {
        const close = t.indexOf('*/', start + 2);
        return close === -1 ? -1 : close + 2;
      },
      (start, end) => (t.charCodeAt(start + 2) === 0x21 /* ! */ ? t.slice(start + 3, end - 2).replace(/^\d{0,6}/, '') : ''),
    );
  }
  if (t.indexOf('\n') !== -1 && (t.indexOf('#') !== -1 || t.indexOf('--') !== -1)) {
    const u = t;
    t = stripSpans(
      u,
      (from) => {
        const a = u.indexOf('#', from);
        const b = u.indexOf('--', from);
        return a === -1 ? b : b === -1 ? a : Math.min(a, b);
      },
      (start) => {
        const nl = u.indexOf('\n', start);
        return nl === -1 ? -1 : nl + 1;
      },
    );
  }
  return t;
}


/**
 * The text shell rules see: quotes and backslashes removed (`c'a't /e\tc/pa""sswd` → `cat
 * /etc/passwd`), `$IFS`/`${IFS}` as a space, empty expansions (`$@`, `$9`) dropped and brace
 * lists opened (`{cat,/etc/passwd}` → `cat /etc/passwd`).
 */
export function shellView(s: string): string {
  let t = s;
  if (t.indexOf('$') !== -1) t = t.replace(/\$\{ifs(?:%\?\?)?\}|\$ifs\b/g, ' ').replace(/\$(?:@|\*|\d)|\$\{\d\}/g, '');
  if (t.indexOf("'") !== -1 || t.indexOf('"') !== -1 || t.indexOf('\\') !== -1) t = t.replace(/['"\\]/g, '');
  if (t.indexOf('{') !== -1 && t.indexOf(',') !== -1) t = t.replace(/\{([\w./-]{1,40}),([^{}\s]{1,200})\}/g, (_m: string, a: string, b: string) => `${a} ${b.replaceAll(',', ' ')}`);
  return t;
}

export interface BoundedBody {
  text: string;
  /** Bytes examined (at most maxBytes). */
  bytesInspected: number;
  /** The body's full size in bytes. */
  totalBytes: number;
  truncated: boolean;
  invalidUtf8: boolean;
}

/**
 * At most `maxBytes` of a body, cut on a UTF-8 character boundary, as text. Bytes that are not
 * UTF-8 become U+FFFD and are reported, never thrown.
 */
export function boundBody(body: Buffer | string, maxBytes: number = DEFAULT_MAX_BODY_BYTES): BoundedBody {
  if (typeof body === 'string') {
    // Each UTF-16 unit is at most 3 UTF-8 bytes: short strings need no encoding to be measured.
    if (body.length * 3 <= maxBytes) {
      const text = body.indexOf(FIELD_SEPARATOR) === -1 ? body : body.replaceAll(FIELD_SEPARATOR, '\ufffd');
      const bytes = Buffer.byteLength(body, 'utf8');
      return { text, bytesInspected: bytes, totalBytes: bytes, truncated: false, invalidUtf8: false };
    }
    const head = Buffer.from(body.slice(0, maxBytes + 1), 'utf8');
    const b = boundBody(head, maxBytes);
    return { text: b.text, bytesInspected: b.bytesInspected, totalBytes: Buffer.byteLength(body, 'utf8'), truncated: b.truncated || body.length > maxBytes + 1, invalidUtf8: b.invalidUtf8 };
  }
  const totalBytes = body.length;
  let end = Math.min(totalBytes, maxBytes);
  const truncated = end < totalBytes;
  if (truncated) {
    // Do not cut a character in two: back up to the first byte of the one that straddles.
    let back = 0;
    while (end > 0 && back < 3 && (body[end]! & 0xc0) === 0x80) {
      end--;
      back++;
    }
  }
  const slice = body.subarray(0, end);
  const invalidUtf8 = !isUtf8(slice);
  let text = slice.toString('utf8');
  if (text.indexOf(FIELD_SEPARATOR) !== -1) text = text.replaceAll(FIELD_SEPARATOR, '\ufffd');
  return { text, bytesInspected: end, totalBytes, truncated, invalidUtf8 };
}
