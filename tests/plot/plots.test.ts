import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plotRunDir, readCompareRun, writeComparePlots } from '../../cli/plot.js';
import { uniformAt } from '../../src/backend/rng.js';
import { type CompareRun, REACH_FRACTION, comparePlots, compareTable, stepsToReach } from '../../src/plot/compare.js';
import { flatDomain } from '../../src/plot/charts.js';
import { DAPO_PANELS, panelSvg, runPlots } from '../../src/plot/panels.js';
import { svgToPng } from '../../src/plot/png_node.js';
import { type MetricsRecord, aggregateSeries, ema, meanStd, parseJsonl } from '../../src/plot/series.js';

const tmpDirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dapo-plot-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** 50 RL steps of plausible, seeded metrics (DAPO fields only). */
function syntheticMetrics(seed: number, steps = 50): MetricsRecord[] {
  const u = (i: number) => uniformAt(seed, i);
  return Array.from({ length: steps }, (_, i) => ({
    step: i + 1,
    // null for a skipped step must not break a chart
    policy_loss: i === 7 ? null : 0.1 * (u(6 * i) - 0.5),
    skipped: i === 7,
    entropy_loss: -0.01, // constant: the axis must not show EMA rounding noise
    entropy: 1.5 - i / steps + 0.05 * u(6 * i + 1),
    reward_mean: -1 + 2 * Math.min(1, i / 30) * (0.8 + 0.2 * u(6 * i + 2)),
    accuracy: Math.min(1, i / 30) * (0.8 + 0.2 * u(6 * i + 3)),
    resample_rate: 0.3 * u(6 * i + 4),
    response_length_mean: 12 + 4 * u(6 * i + 5),
  }));
}

const syntheticEvals: MetricsRecord[] = [
  { step: 0, phase: 'sft', accuracy: 0.2, pass_at_k: 0.4, k: 4, n: 50 },
  { step: 25, phase: 'rl', accuracy: 0.5, pass_at_k: 0.7, k: 4, n: 50 },
  { step: 50, phase: 'final', accuracy: 0.7, pass_at_k: 0.85, k: 4, n: 50 },
];

/** Minimal XML sanity check: one <svg> root, every non-self-closing tag closed in order. */
function expectWellFormedSvg(svg: string): void {
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, self] = m;
    if (self) continue;
    if (close) expect(stack.pop()).toBe(name);
    else stack.push(name!);
  }
  expect(stack).toEqual([]);
  expect(svg).not.toMatch(/NaN|undefined/);
}

function pngWidth(png: Uint8Array): number {
  return new DataView(png.buffer, png.byteOffset, png.byteLength).getUint32(16);
}
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

describe('series helpers', () => {
  it('debiased EMA matches a hand computation', () => {
    // w = 0.5: s1 = 1; s2 = (0.25 + 1) / 0.75; s3 = (0.625 + 1.5) / 0.875
    const s = ema([1, 2, 3], 0.5);
    expect(s[0]).toBeCloseTo(1, 12);
    expect(s[1]).toBeCloseTo(5 / 3, 12);
    expect(s[2]).toBeCloseTo(2.125 / 0.875, 12);
    expect(() => ema([1], 1)).toThrow(/weight/);
  });

  it('meanStd uses the sample standard deviation', () => {
    const ms = meanStd([0.4, 0.4, 0.7, NaN]);
    expect(ms.n).toBe(3);
    expect(ms.mean).toBeCloseTo(0.5, 12);
    expect(ms.std).toBeCloseTo(Math.sqrt(0.03), 12);
    expect(Number.isNaN(meanStd([1]).std)).toBe(true);
  });

  it('aggregateSeries gives per-step mean, min, max and count over the steps every series reached', () => {
    const agg = aggregateSeries([[{ step: 1, value: 1 }, { step: 2, value: 4 }, { step: 3, value: 5 }], [{ step: 1, value: 3 }, { step: 2, value: 2 }]]);
    expect(agg).toEqual([{ step: 1, mean: 2, min: 1, max: 3, n: 2 }, { step: 2, mean: 3, min: 2, max: 4, n: 2 }]);
  });

  it('a flat series gets a padded y domain instead of an axis zoomed into rounding noise', () => {
    const d = flatDomain([-0.01, -0.01 + 1e-17, -0.0099999999999999]);
    expect(d![0]).toBeCloseTo(-0.011, 12);
    expect(d![1]).toBeCloseTo(-0.009, 12);
    expect(flatDomain([0, 0])).toEqual([-1, 1]);
    expect(flatDomain([1, 2])).toBeUndefined();
    expect(flatDomain([])).toBeUndefined();
  });

  it('parseJsonl drops a truncated last line and names a bad line elsewhere', () => {
    const ok = parseJsonl('{"step":1,"x":2}\n\n{"step":2,"x":3}\n{"step":3,"x', 'm.jsonl');
    expect(ok.truncated).toBe(true);
    expect(ok.records.map((r) => r.step)).toEqual([1, 2]);
    expect(parseJsonl('{"step":1}\n', 'm.jsonl').truncated).toBe(false);
    expect(() => parseJsonl('{"step":1}\n{bad\n{"step":3}\n', 'm.jsonl')).toThrow(/m\.jsonl:2: not valid JSON/);
    expect(() => parseJsonl('{"x":1}\n', 'm.jsonl')).toThrow(/m\.jsonl:1: record has no numeric "step"/);
  });
});

describe('run panels (SVG)', () => {
  it('renders every DAPO panel and an overview as well-formed SVG with titles, axis labels and lines', async () => {
    const plots = await runPlots(syntheticMetrics(1), syntheticEvals);
    const byFile = new Map(plots.map((p) => [p.file, p.svg]));
    for (const spec of DAPO_PANELS) {
      const svg = byFile.get(spec.file);
      expect(svg, spec.file).toBeDefined();
      expectWellFormedSvg(svg!);
      expect(svg).toContain(`>${spec.title}<`);
      expect(svg).toContain(`>${spec.yLabel}<`);
      expect(svg).toContain('>RL step<');
      expect(svg).toMatch(/<path[^>]* d="M[\d.-]+,[\d.-]+L/); // a drawn line, not just axes
    }
    // train and held-out accuracy share a chart, so it has a legend with both
    expect(byFile.get('accuracy')).toContain('>held-out (greedy)<');
    expect(byFile.get('accuracy')).toContain('>train<');
    // extras appear only when recorded: pass@k is in the evals, grad_norm is not in these metrics
    expect(byFile.has('heldout_pass_at_k')).toBe(true);
    expect(byFile.get('entropy_loss')).not.toMatch(/0\.0099999/);
    expect(byFile.has('grad_norm')).toBe(false);
    const overview = byFile.get('overview')!;
    expectWellFormedSvg(overview);
    for (const spec of DAPO_PANELS) expect(overview).toContain(`>${spec.title}<`);
  });

  it('draws a legend only when there is more than one line', async () => {
    const spec = DAPO_PANELS.find((p) => p.file === 'reward')!;
    const one = await panelSvg(spec, [{ label: 'seed-1', records: syntheticMetrics(1) }]);
    const two = await panelSvg(spec, [{ label: 'seed-1', records: syntheticMetrics(1) }, { label: 'seed-2', records: syntheticMetrics(2) }]);
    expectWellFormedSvg(one);
    expectWellFormedSvg(two);
    expect(one).not.toContain('>seed-1<');
    expect(two).toContain('>seed-1<');
    expect(two).toContain('>seed-2<');
  });

  it('says so when a panel has no data', async () => {
    const spec = DAPO_PANELS.find((p) => p.file === 'resample_rate')!;
    const svg = await panelSvg(spec, [{ label: 'run', records: [{ step: 1, resample_rate: null }] }]);
    expectWellFormedSvg(svg);
    expect(svg).toContain('>no data recorded<');
  });
});

describe('PNG (resvg-wasm, bundled DejaVu Sans)', () => {
  it('has the PNG signature and the requested width', async () => {
    const svg = await panelSvg(DAPO_PANELS[0]!, [{ label: 'run', records: syntheticMetrics(3) }]);
    const png = await svgToPng(svg, { width: 640 });
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    expect(pngWidth(png)).toBe(640);
    const svgWidth = Number(/<svg[^>]* width="(\d+)"/.exec(svg)![1]);
    expect(pngWidth(await svgToPng(svg))).toBe(2 * svgWidth);
    await expect(svgToPng(svg, { width: 0 })).rejects.toThrow(/width must be an integer/);
    await expect(svgToPng('<html/>')).rejects.toThrow(/<svg>/);
  });
});

// 2 algorithms × 3 seeds with values chosen so the table can be checked by hand.
const FINAL_ACC = { dapo: [0.5, 0.6, 0.7], grpo: [0.4, 0.4, 0.7] }; // 0.600 ± 0.100, 0.500 ± 0.173
const SFT_ACC = { dapo: [0.2, 0.2, 0.2], grpo: [0.1, 0.2, 0.3] }; // 0.200 ± 0.000, 0.200 ± 0.100
const LATE_ENTROPY = { dapo: [1.0, 1.1, 1.2], grpo: [0.5, 0.5, 0.8] }; // 1.100 ± 0.100, 0.600 ± 0.173
const RESP_LEN = { dapo: [10, 20, 30], grpo: [20, 20, 20] }; // 20.0 ± 10.0, 20.0 ± 0.0
const ACC_ONSET = { dapo: [10, 12, 14], grpo: [20, 22, 30] }; // train accuracy steps 0 → 1 at this step
const STEPS = 50;

function compareRuns(): CompareRun[] {
  const runs: CompareRun[] = [];
  for (const algo of ['dapo', 'grpo'] as const) {
    for (let i = 0; i < 3; i++) {
      const metrics: MetricsRecord[] = Array.from({ length: STEPS }, (_, j) => {
        const step = j + 1;
        return {
          step,
          policy_loss: 0.01 * (i + 1),
          reward_mean: step >= ACC_ONSET[algo][i] ? 1 : -1,
          accuracy: step >= ACC_ONSET[algo][i] ? 1 : 0,
          // early entropy differs; only the last 10 steps count as "final entropy"
          entropy: step > STEPS - 10 ? LATE_ENTROPY[algo][i] : 3 + step,
          response_length_mean: RESP_LEN[algo][i],
          gen_batches: 1 + (step % 2), // 75 per run
          samples: 8,
        };
      });
      const evals: MetricsRecord[] = [
        { step: 0, phase: 'sft', accuracy: SFT_ACC[algo][i] },
        { step: 50, phase: 'final', accuracy: FINAL_ACC[algo][i] },
        { step: 50, phase: 'rl', accuracy: 0.01 }, // after the final one in the file: 'final' still wins
      ];
      runs.push({ algo, seed: 100 + i, metrics, evals });
    }
  }
  return runs;
}

describe('comparison', () => {
  it('table has the hand-computed mean ± std per algorithm', () => {
    const table = compareTable(compareRuns());
    const lines = table.split('\n');
    const cells = (algo: string) => lines.find((l) => l.startsWith(`| ${algo} |`))!.split('|').slice(1, -1).map((c) => c.trim());
    const header = lines[0]!.split('|').slice(1, -1).map((c) => c.trim());

    // Smoothed accuracy for a 0 → 1 step at `onset`, in closed form: (1 − w^(t − onset + 1)) / (1 − w^t).
    const w = 0.9;
    const smoothedAt = (onset: number, t: number) => (t < onset ? 0 : (1 - w ** (t - onset + 1)) / (1 - w ** t));
    const best = smoothedAt(10, STEPS);
    const threshold = REACH_FRACTION * best;
    const reach = (onset: number) => {
      for (let t = 1; t <= STEPS; t++) if (smoothedAt(onset, t) >= threshold) return t;
      return NaN;
    };
    const dapoReach = meanStd(ACC_ONSET.dapo.map(reach));
    const grpoReach = meanStd(ACC_ONSET.grpo.map(reach));

    expect(header).toEqual(['algo', 'seeds', 'final held-out acc', 'acc after SFT', 'final entropy', 'mean response length', 'steps',
      'gen batches', 'generated samples', `steps to train acc ≥ ${threshold.toFixed(3)}`]);
    expect(cells('dapo')).toEqual(['dapo', '3 (100, 101, 102)', '0.600 ± 0.100', '0.200 ± 0.000', '1.100 ± 0.100', '20.0 ± 10.0',
      '50.0 ± 0.0', '75.0 ± 0.0', '400.0 ± 0.0', `${dapoReach.mean.toFixed(1)} ± ${dapoReach.std.toFixed(1)}`]);
    expect(cells('grpo')).toEqual(['grpo', '3 (100, 101, 102)', '0.500 ± 0.173', '0.200 ± 0.100', '0.600 ± 0.173', '20.0 ± 0.0',
      '50.0 ± 0.0', '75.0 ± 0.0', '400.0 ± 0.0', grpoReach.n === 3 ? `${grpoReach.mean.toFixed(1)} ± ${grpoReach.std.toFixed(1)}` : expect.any(String)]);
    // by hand: best = (1 − 0.9^41)/(1 − 0.9^50) ≈ 0.9918, threshold ≈ 0.7934; onset 10 gives 0.7812 at step 20
    // and 0.8058 at step 21; onset 12: 0.7874 at 23, 0.8105 at 24; onset 14: 0.7731 at 25, 0.7973 at 26
    expect(threshold).toBeCloseTo(0.7934, 4);
    expect(ACC_ONSET.dapo.map(reach)).toEqual([21, 24, 26]);
    expect(cells('dapo')[9]).toBe('23.7 ± 2.5');
    expect(table).not.toMatch(/winner|better/i);
  });

  it('counts runs missing a value and never reaching the threshold', () => {
    const runs = compareRuns().slice(0, 3);
    runs[2] = { ...runs[2]!, evals: [], metrics: runs[2]!.metrics.map((r) => ({ ...r, accuracy: 0 })) };
    const row = compareTable(runs).split('\n').find((l) => l.startsWith('| dapo |'))!;
    expect(row).toContain('0.550 ± 0.071 (2/3)'); // final held-out of 0.5 and 0.6
    expect(row).toMatch(/\| 22\.5 ± 2\.1 \(2\/3\) \|$/); // steps to reach: 21 and 24
    expect(stepsToReach([{ step: 1, value: 0.1 }], 0.5)).toBeNaN();
    expect(() => compareTable([])).toThrow(/no runs/);
    expect(() => compareTable([runs[0]!, runs[0]!])).toThrow(/duplicate runs: dapo seed 100/);
  });

  it('renders the comparison panels with a band and a mean line per algorithm', async () => {
    const plots = await comparePlots(compareRuns());
    expect(plots.map((p) => p.file)).toEqual(['compare_policy_loss', 'compare_reward', 'compare_entropy', 'compare_accuracy',
      'compare_heldout_accuracy', 'compare_overview']);
    for (const { svg } of plots) {
      expectWellFormedSvg(svg);
      expect(svg).toContain('>dapo (3 seeds)<');
      expect(svg).toContain('>grpo (3 seeds)<');
    }
    const acc = plots.find((p) => p.file === 'compare_accuracy')!.svg;
    expect(acc).toContain('mark-area'); // the min–max band
    expect(acc).toContain('mark-line');
  });
});

describe('run directory (Node)', () => {
  it('plotRunDir writes SVG + PNG per panel and tolerates a truncated last line', async () => {
    const dir = tempDir();
    const lines = syntheticMetrics(5).map((r) => JSON.stringify(r));
    writeFileSync(join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n{"step": 51, "policy_lo`);
    writeFileSync(join(dir, 'eval.jsonl'), syntheticEvals.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const log: string[] = [];
    const written = await plotRunDir(dir, (l) => log.push(l), { pngWidth: 320 });
    expect(log.some((l) => l.includes('truncated last line'))).toBe(true);
    for (const spec of DAPO_PANELS) {
      expect(written).toContain(join(dir, 'plots', `${spec.file}.svg`));
      expect(written).toContain(join(dir, 'plots', `${spec.file}.png`));
    }
    for (const p of written) expect(existsSync(p)).toBe(true);
    const png = readFileSync(join(dir, 'plots', 'overview.png'));
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    expectWellFormedSvg(readFileSync(join(dir, 'plots', 'policy_loss.svg'), 'utf8'));
  });

  it('names what is missing', async () => {
    const missing = join(tmpdir(), 'dapo-plot-does-not-exist-7f3a');
    await expect(plotRunDir(missing)).rejects.toThrow(`run directory not found: ${missing}`);
    const empty = tempDir();
    await expect(plotRunDir(empty)).rejects.toThrow(/metrics\.jsonl not found in run directory/);
    expect(() => readCompareRun(empty)).toThrow(/cannot tell rl\.algo and seed/);
  });

  it('writeComparePlots writes the charts and compare.md; readCompareRun takes algo and seed from config.json', async () => {
    const runDir = tempDir();
    writeFileSync(join(runDir, 'config.json'), JSON.stringify({ seed: 7, rl: { algo: 'grpo' } }));
    writeFileSync(join(runDir, 'metrics.jsonl'), syntheticMetrics(7).map((r) => `${JSON.stringify(r)}\n`).join(''));
    const run = readCompareRun(runDir);
    expect([run.algo, run.seed, run.metrics.length, run.evals.length]).toEqual(['grpo', 7, 50, 0]);

    const out = join(tempDir(), 'cmp');
    const written = await writeComparePlots(out, compareRuns(), undefined, { pngWidth: 320 });
    expect(pngWidth(readFileSync(join(out, 'compare_overview.png')))).toBe(320);
    expect(written).toContain(join(out, 'compare.md'));
    expect(written).toContain(join(out, 'compare_accuracy.png'));
    expect(readFileSync(join(out, 'compare.md'), 'utf8')).toContain('| dapo | 3 (100, 101, 102) | 0.600 ± 0.100 |');
  });
});
