// `dapo bench --compare` and the page's compare view share src/bench/compare.ts: saved JSON-lines runs are read
// back (errors name the file and line), laid out as a table per op with a row per machine and backend, and
// drawn as one chart; the CLI prints the tables and writes bench_compare.svg/.png.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BenchRun, compareTables, parseBenchFile } from '../../src/bench/compare.js';
import { benchComparePlot } from '../../src/bench/compare_plot.js';
import { recordJson } from '../../src/bench/format.js';
import { adapterName, browserFromUserAgent, osFromUserAgent } from '../../src/bench/environment.js';
import { dapo } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'dapo-bench-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A saved run as `dapo bench --json` writes it: the environment line, then records through recordJson. */
function savedRun(label: string, scale: number): string {
  const env = { runtime: 'node', label, agent: 'node v20', os: 'linux-x64', cpu_cores: 2, wasm_threads: 2, size: 'quick', cases: ['matmul', 'train_step'], backends: ['wasm'], date: '2026-12-01T00:00:00.000Z' };
  const ours = { op: 'matmul', backend: 'wasm-2t', shape: [256, 256, 256], ms: 1 / scale, gflops: 33 * scale, runs: 5 };
  const peer = { op: 'matmul', backend: 'tfjs-wasm', shape: [256, 256, 256], ms: 4 / scale, gflops: 8.25 * scale, runs: 5 };
  return [
    JSON.stringify({ environment: env }),
    JSON.stringify(recordJson(ours, peer)),
    JSON.stringify(recordJson(peer)),
    JSON.stringify(recordJson({ op: 'matmul', backend: 'wasm-2t', shape: [512, 512, 512], ms: 8 / scale, gflops: 33.5 * scale, runs: 5 })),
    JSON.stringify(recordJson({ op: 'train_step', backend: 'wasm-2t', shape: [4, 64], ms: 50 / scale, tokensPerS: 5120 * scale, extra: { peak_bytes: 1e6 }, runs: 5 })),
    JSON.stringify({ op: 'attention', backend: 'webgpu', error: 'backend unavailable: no adapter' }),
  ].join('\n') + '\n';
}

describe('reading saved runs', () => {
  it('reads the environment, records and failures of a file', () => {
    const run = parseBenchFile(savedRun('box A', 1), 'a.jsonl');
    expect(run.label).toBe('box A');
    expect(run.environment?.cpu_cores).toBe(2);
    expect(run.records.map((r) => `${r.op} ${r.backend}`)).toEqual(['matmul wasm-2t', 'matmul tfjs-wasm', 'matmul wasm-2t', 'train_step wasm-2t']);
    expect(run.failures).toEqual([{ op: 'attention', backend: 'webgpu', error: 'backend unavailable: no adapter' }]);
  });

  it('names the file and line of what is not a bench line', () => {
    expect(() => parseBenchFile('{"op":"matmul","backend":"wasm","shape":[2],"ms":1,"gflops":1}\nnot json\n', 'x.jsonl')).toThrow(/x\.jsonl:2: not JSON/);
    expect(() => parseBenchFile('{"op":"matmul","backend":"wasm","shape":[2],"ms":1}\n', 'y.jsonl')).toThrow(/y\.jsonl:1: not a dapo bench record \(no gflops, gbps or tokens_per_s\)/);
    expect(() => parseBenchFile('{"op":"matmul"}\n', 'z.jsonl')).toThrow(/z\.jsonl:1: .*missing backend, shape, ms/);
    expect(() => parseBenchFile('[1,2]\n', 'w.jsonl')).toThrow(/w\.jsonl:1: expected a JSON object per line/);
    expect(() => parseBenchFile('\n', 'empty.jsonl')).toThrow(/empty\.jsonl: no bench records/);
    const env = JSON.stringify({ environment: { label: 'x' } });
    expect(() => parseBenchFile(`${env}\n${env}\n`, 'two.jsonl')).toThrow(/two\.jsonl:2: a second environment line/);
  });

  it('a file without an environment line is named by its source', () => {
    const run = parseBenchFile(savedRun('ignored', 1).split('\n').slice(1).join('\n'), 'old.jsonl');
    expect(run.label).toBe('old.jsonl');
  });
});

describe('tables side by side', () => {
  const runs: BenchRun[] = [parseBenchFile(savedRun('box A', 1), 'a.jsonl'), parseBenchFile(savedRun('box B', 2), 'b.jsonl')];

  it('a table per op, a row per machine and backend, a column per shape, empty cells marked', () => {
    const tables = compareTables(runs);
    expect(tables.map((t) => `${t.op} ${t.unit}`)).toEqual(['matmul GFLOP/s', 'train_step tokens/s']);
    const [matmul, train] = tables;
    expect(matmul.columns).toEqual(['256×256×256', '512×512×512']);
    expect(matmul.rows.map((r) => r.label)).toEqual(['box A · wasm-2t', 'box A · tfjs-wasm', 'box B · wasm-2t', 'box B · tfjs-wasm']);
    expect(matmul.rows.map((r) => r.values)).toEqual([[33, 33.5], [8.25, null], [66, 67], [16.5, null]]);
    expect(matmul.rows[2].ms).toEqual([0.5, 4]);
    expect(train.rows.map((r) => r.values)).toEqual([[5120], [10240]]);
    expect(matmul.markdown).toContain('| box B · tfjs-wasm | 16.5 (2.00 ms) | — |');
    expect(matmul.markdown.split('\n')[0]).toBe('### matmul (GFLOP/s, higher is faster; ms per run in parentheses)');
  });

  it('two files with the same label are told apart by file name', () => {
    const twins = [parseBenchFile(savedRun('same box', 1), 'monday.jsonl'), parseBenchFile(savedRun('same box', 1), 'tuesday.jsonl')];
    expect(compareTables(twins)[1].rows.map((r) => r.label)).toEqual(['same box [monday.jsonl] · wasm-2t', 'same box [tuesday.jsonl] · wasm-2t']);
  });

  it('draws one SVG with a bar per row and shape', async () => {
    const svg = await benchComparePlot(runs);
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['matmul', 'train_step', 'box A · wasm-2t', 'box B · tfjs-wasm', 'GFLOP/s', 'tokens/s']) expect(svg).toContain(text);
    // A bar per row and shape: 2 runs × (wasm: 2 shapes + tfjs: 1) matmul bars + 2 train_step bars.
    const bars = [...svg.matchAll(/aria-label="([^"]*)"[^>]*aria-roledescription="bar"/g)].map((m) => m[1]);
    expect(bars).toHaveLength(8);
    expect(bars).toContain('GFLOP/s: 67; shape: 512×512×512; series: box B · wasm-2t');
    expect(bars).toContain('tokens/s: 5120; shape: 4×64; series: box A · wasm-2t');
  });
});

describe('environment names', () => {
  it('browser and OS from userAgentData brands or the userAgent string', () => {
    expect(browserFromUserAgent('', [{ brand: 'Not A(Brand', version: '8' }, { brand: 'Chromium', version: '131' }, { brand: 'Google Chrome', version: '131' }])).toBe('Google Chrome 131');
    expect(browserFromUserAgent('Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0')).toBe('Firefox 133');
    expect(browserFromUserAgent('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15')).toBe('Safari 18');
    expect(osFromUserAgent('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)')).toBe('macOS');
    expect(osFromUserAgent('anything', 'Windows')).toBe('Windows');
    const adapter = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200', fallback: false, software: false, feature_level: 'core' as const, features: [], limits: {} };
    expect(adapterName(adapter)).toBe('nvidia hopper (NVIDIA H200)');
    expect(adapterName({ ...adapter, vendor: '', architecture: '', description: '' })).toBe('unnamed adapter');
    expect(adapterName({ error: 'no navigator.gpu' })).toBe('no WebGPU');
  });
});

describe('`dapo bench --compare`', () => {
  it('prints the tables of two files and writes the chart', async () => {
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    writeFileSync(a, savedRun('box A', 1));
    writeFileSync(b, savedRun('box B', 2));
    const out = join(dir, 'out');
    const r = await dapo(['bench', '--compare', a, b, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('### matmul (GFLOP/s');
    expect(r.stdout).toContain('| box A · wasm-2t | 33.0 (1.00 ms) | 33.5 (8.00 ms) |');
    expect(r.stdout).toContain('| box B · wasm-2t | 66.0 (0.500 ms) | 67.0 (4.00 ms) |');
    expect(r.stdout).toContain('### train_step (tokens/s');
    expect(readFileSync(join(out, 'bench_compare.svg'), 'utf8')).toContain('box B · wasm-2t');
    expect(readFileSync(join(out, 'bench_compare.png')).subarray(1, 4).toString()).toBe('PNG');
  }, 120_000);

  it('fails naming the bad file and line', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"op":"matmul","backend":"wasm","shape":[2],"ms":1,"gflops":1}\n{"oops"\n');
    const r = await dapo(['bench', '--compare', bad, join(dir, 'missing.jsonl'), '--out', join(dir, 'bad-out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.jsonl:2: not JSON');
    expect(existsSync(join(dir, 'bad-out'))).toBe(false);
  }, 120_000);
});
