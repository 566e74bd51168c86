// Bench runs side by side: JSON-lines files from `dapo bench --json` or the browser page (an environment
// line, then records), read back and laid out as one table per op — a row per machine/browser/backend, a
// column per shape, the op's throughput figure in each cell. Shared by `dapo bench --compare` and the page's
// compare view; the chart is in compare_plot.ts (it loads the plot libraries).
import type { BenchEnvironment } from './environment.js';

/** A record line as printed by recordJson (snake_case keys). */
export interface BenchLineRecord {
  op: string;
  backend: string;
  shape: number[];
  ms: number;
  gflops?: number;
  gbps?: number;
  tokens_per_s?: number;
  vs?: string;
  ratio?: number;
  [extra: string]: unknown;
}

export interface BenchLineFailure {
  op: string;
  backend: string;
  shape?: number[];
  error: string;
}

export interface BenchRun {
  /** Where the lines came from (a file name). */
  source: string;
  /** The run's name in a comparison: the environment's label, else the source. */
  label: string;
  environment?: BenchEnvironment;
  records: BenchLineRecord[];
  failures: BenchLineFailure[];
}

const THROUGHPUT = [['gflops', 'GFLOP/s'], ['gbps', 'GB/s'], ['tokens_per_s', 'tokens/s']] as const;

/** The throughput key a record line carries and its unit. */
export function figureOf(r: BenchLineRecord): { key: 'gflops' | 'gbps' | 'tokens_per_s'; unit: string; value: number } {
  for (const [key, unit] of THROUGHPUT) if (typeof r[key] === 'number') return { key, unit, value: r[key] as number };
  throw new Error(`${r.op} ${r.backend}: no throughput figure`);
}

const isNumberArray = (x: unknown): x is number[] => Array.isArray(x) && x.every((d) => typeof d === 'number');

/** Why an object is not a record line, or null when it is one. */
function recordProblem(o: Record<string, unknown>): string | null {
  const missing = ['op', 'backend', 'shape', 'ms'].filter((k) => !(k in o));
  if (missing.length) return `missing ${missing.join(', ')}`;
  if (typeof o.op !== 'string' || typeof o.backend !== 'string') return 'op and backend must be strings';
  if (!isNumberArray(o.shape)) return 'shape must be an array of numbers';
  if (typeof o.ms !== 'number') return 'ms must be a number';
  if (!THROUGHPUT.some(([k]) => typeof o[k] === 'number')) return 'no gflops, gbps or tokens_per_s';
  return null;
}

/**
 * Parses one file's JSON lines; throws naming the source and line of anything that is not an environment,
 * record or failure line, and when there is no record at all.
 */
export function parseBenchFile(text: string, source: string): BenchRun {
  const run: BenchRun = { source, label: source, records: [], failures: [] };
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${source}:${i + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw new Error(`${where}: not JSON (${line.length > 60 ? `${line.slice(0, 60)}…` : line})`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${where}: expected a JSON object per line`);
    const obj = o as Record<string, unknown>;
    if ('environment' in obj) {
      const env = obj.environment as BenchEnvironment;
      if (typeof env !== 'object' || env === null || typeof env.label !== 'string') throw new Error(`${where}: the environment line has no label`);
      if (run.environment) throw new Error(`${where}: a second environment line (one run per file)`);
      run.environment = env;
      run.label = env.label;
    } else if ('error' in obj) {
      if (typeof obj.op !== 'string' || typeof obj.backend !== 'string') throw new Error(`${where}: a failure line needs op and backend`);
      run.failures.push(obj as unknown as BenchLineFailure);
    } else {
      const problem = recordProblem(obj);
      if (problem) throw new Error(`${where}: not a dapo bench record (${problem}); expected the lines of \`dapo bench --json\` or the bench page's download`);
      run.records.push(obj as unknown as BenchLineRecord);
    }
  });
  if (run.records.length === 0) throw new Error(`${source}: no bench records (an empty file, or only failures)`);
  return run;
}

/** One row of a comparison: a run's backend. */
export interface CompareRow {
  label: string;
  run: BenchRun;
  backend: string;
  /** Per column: the throughput and ms, or null where this row has no record of that shape. */
  values: (number | null)[];
  ms: (number | null)[];
}

export interface CompareTable {
  op: string;
  unit: string;
  /** Shapes, as "a×b×c". */
  columns: string[];
  rows: CompareRow[];
  markdown: string;
}

const shapeText = (shape: readonly number[]) => shape.join('×');

/** Labels made unique across runs: a label two files share gets the file name appended. */
function runLabels(runs: readonly BenchRun[]): Map<BenchRun, string> {
  const count = new Map<string, number>();
  for (const r of runs) count.set(r.label, (count.get(r.label) ?? 0) + 1);
  return new Map(runs.map((r, i) => [r, count.get(r.label)! > 1 ? `${r.label} [${r.source === r.label ? `#${i + 1}` : r.source}]` : r.label]));
}

function formatFigure(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3;
  return x.toFixed(digits);
}

/** One table per op, in the order ops first appear; rows are (run, backend) pairs in file order. */
export function compareTables(runs: readonly BenchRun[]): CompareTable[] {
  if (runs.length === 0) throw new Error('compareTables: no runs');
  const labels = runLabels(runs);
  const ops: string[] = [];
  for (const run of runs) for (const r of run.records) if (!ops.includes(r.op)) ops.push(r.op);
  return ops.map((op) => {
    const all = runs.flatMap((run) => run.records.filter((r) => r.op === op).map((r) => ({ run, r })));
    const columns = [...new Set(all.map(({ r }) => shapeText(r.shape)))];
    const unit = figureOf(all[0].r).unit;
    const rows: CompareRow[] = [];
    for (const run of runs) {
      const backends = [...new Set(run.records.filter((r) => r.op === op).map((r) => r.backend))];
      for (const backend of backends) {
        const mine = run.records.filter((r) => r.op === op && r.backend === backend);
        const at = (shape: string) => mine.find((r) => shapeText(r.shape) === shape);
        rows.push({
          label: `${labels.get(run)} · ${backend}`, run, backend,
          values: columns.map((c) => { const r = at(c); return r ? figureOf(r).value : null; }),
          ms: columns.map((c) => at(c)?.ms ?? null),
        });
      }
    }
    const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
    const markdown = [
      `### ${op} (${unit}, higher is faster; ms per run in parentheses)`,
      '',
      line(['machine · browser · backend', ...columns]),
      line(['---', ...columns.map(() => '---:')]),
      ...rows.map((row) => line([row.label, ...row.values.map((v, i) => (v === null ? '—' : `${formatFigure(v)} (${formatFigure(row.ms[i]!)} ms)`))])),
    ].join('\n');
    return { op, unit, columns, rows, markdown };
  });
}
