/**
 * IDS findings are kept and aggregated into statistics (R12.2), so their samples must never carry
 * credentials: a whole field that holds a secret becomes `***`, and secrets written inside other
 * text (`password=…`, `"token":"…"`, `Bearer …`, `hkn_…`, JWTs, the session cookie) are masked.
 */

export const SAMPLE_MAX = 200;
export const REDACTED = '***';

const SENSITIVE_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-auth-token',
  'x-csrf-token',
  'x-xsrf-token',
  'x-amz-security-token',
]);

const SENSITIVE_KEY = /pass(?:word|wd|phrase|code)|^pass$|^pwd$|token|secret|api[-_]?key|credential|private[-_]?key|session|cookie|authorization|^auth$/i;

export function isSensitiveHeader(name: string): boolean {
  return SENSITIVE_HEADERS.has(name.toLowerCase());
}

/** A JSON, query or form field whose value is a credential. */
export function isSensitiveKey(name: string): boolean {
  return name.length <= 100 && SENSITIVE_KEY.test(name);
}

/** Each pattern's last capturing group (or the whole match) is the secret to mask. */
const SECRET_PATTERNS: RegExp[] = [
  /(?:pass(?:word|wd|phrase|code)?|pwd|token|secret|api[-_]?key|access[-_]?key|session(?:[-_]?id)?|credential)[\w-]{0,20}["']?\s*[:=]\s*["']?([^\s"'&;,}]{1,400})/dgi,
  /\b(?:bearer|basic|token)\s+([\w.~+/=-]{4,400})/dgi,
  /\bhkn_[\w-]{8,400}/dgi,
  /\beyj[\w-]{8,}\.[\w-]{8,}\.[\w-]{4,}/dgi,
  /hokan_session=([^\s;&]{1,400})/dgi,
];

/** Character ranges of secrets inside `text`, sorted and merged. */
export function secretSpans(text: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const re of SECRET_PATTERNS) {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const range = m.indices?.[m.length - 1] ?? m.indices?.[0];
      if (range) spans.push([range[0], range[1]]);
      if (m[0].length === 0) re.lastIndex++;
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else merged.push([s[0], s[1]]);
  }
  return merged;
}

const CONTROL = /[\u0000-\u001f\u007f]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeControl(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  if (c === '\u0000') return '\\0';
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** Makes a sample safe to log: control characters escaped, no broken surrogates, ≤ 200 chars. */
export function cleanSample(s: string): string {
  return s.replace(CONTROL, escapeControl).replace(LONE_SURROGATE, '\ufffd').slice(0, SAMPLE_MAX);
}

/**
 * At most 200 characters of `text` around [start, end), with secrets masked. A sensitive field
 * yields only `***`.
 */
export function sampleAround(text: string, start: number, end: number, sensitive: boolean): string {
  if (sensitive) return REDACTED;
  const len = Math.max(0, end - start);
  let from: number;
  let to: number;
  if (len >= SAMPLE_MAX) {
    from = start;
    to = start + SAMPLE_MAX;
  } else {
    const pad = Math.floor((SAMPLE_MAX - len) / 2);
    from = Math.max(0, start - pad);
    to = Math.min(text.length, end + pad);
    if (from === 0) to = Math.min(text.length, SAMPLE_MAX);
    else if (to === text.length) from = Math.max(0, text.length - SAMPLE_MAX);
  }
  let out = '';
  let pos = from;
  for (const [s, e] of secretSpans(text)) {
    if (e <= from || s >= to) continue;
    if (s > pos) out += text.slice(pos, s);
    out += REDACTED;
    pos = Math.max(pos, e);
  }
  if (pos < to) out += text.slice(pos, to);
  return cleanSample(out);
}
