// How bench records are printed: one JSON object per line, or an aligned text line.
// JSON keys: op, backend, shape, ms, then gflops | gbps | tokens_per_s, then case extras (peak_bytes,
// recompute_ms, speedup, fwd_bwd_ms), then vs and ratio = our throughput ÷ the peer's (> 1: ours is faster).
// A failed measurement is {op, backend, shape?, error}; the run's environment is one {"environment": {...}} line.
import { type BenchFailure, type BenchRecord, throughputOf } from './common.js';
import { profileText } from './profile.js';

export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Our throughput over the peer's, on the figure the record carries. */
export function peerRatio(ours: BenchRecord, peer: BenchRecord): number {
  return throughputOf(ours)! / throughputOf(peer)!;
}

export function recordJson(r: BenchRecord, vs?: BenchRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { op: r.op, backend: r.backend, shape: r.shape, ms: round(r.ms) };
  if (r.gflops !== undefined) out.gflops = round(r.gflops);
  if (r.gbps !== undefined) out.gbps = round(r.gbps);
  if (r.tokensPerS !== undefined) out.tokens_per_s = round(r.tokensPerS);
  for (const [k, v] of Object.entries(r.extra ?? {})) out[k] = Number.isInteger(v) ? v : round(v);
  if (r.checkpointing !== undefined) out.checkpointing = r.checkpointing;
  if (r.profile) {
    const p = r.profile;
    out.profile = {
      timed: p.timed, wall_ms: round(p.wallMs), ms: Object.fromEntries(Object.entries(p.ms).map(([k, v]) => [k, round(v)])), calls: p.calls,
      ...(p.dispatches !== undefined ? { dispatches: p.dispatches, submits: p.submits } : {}),
      ...(p.dispatchesByKernel ? { dispatches_by_kernel: p.dispatchesByKernel } : {}),
    };
  }
  if (vs) {
    out.vs = vs.backend;
    out.ratio = round(peerRatio(r, vs));
  }
  return out;
}

export function failureJson(f: BenchFailure): Record<string, unknown> {
  return { op: f.op, backend: f.backend, ...(f.shape.length ? { shape: f.shape } : {}), error: f.error };
}

export function failureText(f: BenchFailure): string {
  return `  ${f.op.padEnd(20)} ${f.shape.join('×').padEnd(16)} ${f.backend}: failed (${f.error})`;
}

export function recordText(r: BenchRecord, vs?: BenchRecord): string {
  const figure = r.gflops !== undefined ? `${fmt(r.gflops)} GFLOP/s`
    : r.gbps !== undefined ? `${fmt(r.gbps)} GB/s`
    : `${fmt(r.tokensPerS ?? NaN)} tok/s`;
  const extras = Object.entries(r.extra ?? {}).map(([k, v]) => `${k}=${fmt(v)}`).join(' ');
  return `  ${r.op.padEnd(20)} ${r.shape.join('×').padEnd(16)} ${r.backend.padEnd(12)} ${fmt(r.ms).padStart(10)} ms ${figure.padStart(18)}`
    + (extras ? `  ${extras}` : '') + (r.checkpointing ? '  checkpointing' : '') + (vs ? `   ${fmt(peerRatio(r, vs))}× ${vs.backend}` : '')
    + (r.profile ? `\n      ${profileText(r.profile)}` : '');
}

function fmt(x: number): string {
  return round(x).toString();
}
