/**
 * A small LCS diff, enough for terms articles (tens of lines, hundreds of characters): line level
 * for an article, and character level for a line replaced by another.
 */

export type DiffOp<T> = { op: 'equal' | 'delete' | 'insert'; value: T };

/** Longest common subsequence over two sequences; O(n·m) time and memory. */
export function lcsDiff<T>(a: readonly T[], b: readonly T[], eq: (x: T, y: T) => boolean = Object.is): DiffOp<T>[] {
  const n = a.length;
  const m = b.length;
  const w = m + 1;
  const table = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * w + j] = eq(a[i]!, b[j]!) ? table[(i + 1) * w + j + 1]! + 1 : Math.max(table[(i + 1) * w + j]!, table[i * w + j + 1]!);
    }
  }
  const out: DiffOp<T>[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (eq(a[i]!, b[j]!)) {
      out.push({ op: 'equal', value: a[i]! });
      i++;
      j++;
    } else if (table[(i + 1) * w + j]! >= table[i * w + j + 1]!) {
      out.push({ op: 'delete', value: a[i++]! });
    } else {
      out.push({ op: 'insert', value: b[j++]! });
    }
  }
  while (i < n) out.push({ op: 'delete', value: a[i++]! });
  while (j < m) out.push({ op: 'insert', value: b[j++]! });
  return out;
}

export interface TextSpan {
  op: 'equal' | 'delete' | 'insert';
  text: string;
}

/** Above this many cells a character diff is not worth it: the line is shown as replaced. */
const MAX_CHAR_CELLS = 4_000_000;
/** Character diffs of one article's changed lines together; past it, lines are shown as replaced. */
const MAX_CHAR_CELLS_TOTAL = 16_000_000;
/** Above this many cells (lines × lines) the changed middle of an article is shown as replaced. */
const MAX_LINE_CELLS = 4_000_000;

/** Character-level difference of two lines (by code point), merged into runs. */
export function diffChars(a: string, b: string, budget?: { cells: number }): TextSpan[] {
  const ca = [...a];
  const cb = [...b];
  const cells = ca.length * cb.length;
  if (cells > MAX_CHAR_CELLS || (budget && cells > budget.cells)) {
    return [...(a ? [{ op: 'delete' as const, text: a }] : []), ...(b ? [{ op: 'insert' as const, text: b }] : [])];
  }
  if (budget) budget.cells -= cells;
  const spans: TextSpan[] = [];
  for (const d of lcsDiff(ca, cb)) {
    const last = spans.at(-1);
    if (last && last.op === d.op) last.text += d.value;
    else spans.push({ op: d.op, text: d.value });
  }
  return spans;
}

export type LineChange =
  | { op: 'equal'; text: string }
  | { op: 'delete'; text: string }
  | { op: 'insert'; text: string }
  | { op: 'change'; from: string; to: string; chars: TextSpan[] };

/**
 * Line-level difference; a run of deleted lines followed by a run of inserted lines is paired
 * line by line into changes with a character diff, the rest left as deletions or insertions.
 */
export function diffLines(a: string, b: string): LineChange[] {
  const la = a.split('\n');
  const lb = b.split('\n');
  // Lines both sides share at the start and the end are equal without a table; the LCS runs on the
  // middle only, and only when that is small. The diff runs inside a request (and a publication):
  // an article of tens of thousands of lines must not hold the event loop for minutes.
  let head = 0;
  while (head < la.length && head < lb.length && la[head] === lb[head]) head++;
  let tail = 0;
  while (tail < la.length - head && tail < lb.length - head && la[la.length - 1 - tail] === lb[lb.length - 1 - tail]) tail++;
  const midA = la.slice(head, la.length - tail);
  const midB = lb.slice(head, lb.length - tail);
  const middle: DiffOp<string>[] =
    midA.length * midB.length <= MAX_LINE_CELLS
      ? lcsDiff(midA, midB)
      : [...midA.map((value) => ({ op: 'delete' as const, value })), ...midB.map((value) => ({ op: 'insert' as const, value }))];
  const ops: DiffOp<string>[] = [
    ...la.slice(0, head).map((value) => ({ op: 'equal' as const, value })),
    ...middle,
    ...la.slice(la.length - tail).map((value) => ({ op: 'equal' as const, value })),
  ];
  const budget = { cells: MAX_CHAR_CELLS_TOTAL };
  const out: LineChange[] = [];
  for (let k = 0; k < ops.length; ) {
    if (ops[k]!.op === 'equal') {
      out.push({ op: 'equal', text: ops[k]!.value });
      k++;
      continue;
    }
    const dels: string[] = [];
    const ins: string[] = [];
    while (k < ops.length && ops[k]!.op === 'delete') dels.push(ops[k++]!.value);
    while (k < ops.length && ops[k]!.op === 'insert') ins.push(ops[k++]!.value);
    const paired = Math.min(dels.length, ins.length);
    for (let x = 0; x < paired; x++) out.push({ op: 'change', from: dels[x]!, to: ins[x]!, chars: diffChars(dels[x]!, ins[x]!, budget) });
    for (const d of dels.slice(paired)) out.push({ op: 'delete', text: d });
    for (const i of ins.slice(paired)) out.push({ op: 'insert', text: i });
  }
  return out;
}
