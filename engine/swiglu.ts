// SwiGLU gating: out = silu(gate)·up and its backward, elementwise over n floats. Work range [start, end).
import { sigmoidV } from './common';

@inline function sigmoid(x: f32): f32 { return <f32>1 / (<f32>1 + Mathf.exp(-x)); }

export function swiglu(gate: usize, up: usize, out: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const a = <usize>i << 2;
    const g = v128.load(gate + a);
    v128.store(out + a, f32x4.mul(f32x4.mul(g, sigmoidV(g)), v128.load(up + a)));
  }
  for (; i < end; i++) {
    const a = <usize>i << 2;
    const g = load<f32>(gate + a);
    store<f32>(out + a, g * sigmoid(g) * load<f32>(up + a));
  }
}

/** gGate = gOut·up·σ(g)·(1 + g·(1 − σ(g))), gUp = gOut·g·σ(g). */
export function swiglu_bwd(gate: usize, up: usize, gOut: usize, gGate: usize, gUp: usize, start: i32, end: i32): void {
  const one = f32x4.splat(1);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const a = <usize>i << 2;
    const g = v128.load(gate + a);
    const go = v128.load(gOut + a);
    const sg = sigmoidV(g);
    v128.store(gGate + a, f32x4.mul(f32x4.mul(f32x4.mul(go, v128.load(up + a)), sg), f32x4.add(one, f32x4.mul(g, f32x4.sub(one, sg)))));
    v128.store(gUp + a, f32x4.mul(go, f32x4.mul(g, sg)));
  }
  for (; i < end; i++) {
    const a = <usize>i << 2;
    const g = load<f32>(gate + a);
    const go = load<f32>(gOut + a);
    const sg = sigmoid(g);
    store<f32>(gGate + a, go * load<f32>(up + a) * sg * (<f32>1 + g * (<f32>1 - sg)));
    store<f32>(gUp + a, go * (g * sg));
  }
}
