// Uniform blocks written by field name: the generated layouts follow the WGSL structs, and a launcher that names
// a field the shader does not have fails loudly instead of writing a stray word.
import { describe, expect, it } from 'vitest';
import { UNIFORM_LAYOUTS, setParams } from '../../src/backend/webgpu/uniform_params.js';

function emptySlot() {
  const buffer = new ArrayBuffer(256);
  return { u: new Uint32Array(buffer), f: new Float32Array(buffer), i: new Int32Array(buffer) };
}

describe('uniform layouts', () => {
  it('write each field through the view of its WGSL type at its word offset', () => {
    const slot = emptySlot();
    setParams(slot, UNIFORM_LAYOUTS.attention, { tq: 7, scale: 0.125, inf: Infinity });
    expect(slot.u[UNIFORM_LAYOUTS.attention.tq.word]).toBe(7);
    expect(slot.f[UNIFORM_LAYOUTS.attention.scale.word]).toBe(0.125);
    expect(slot.f[UNIFORM_LAYOUTS.attention.inf.word]).toBe(Infinity);
    expect(slot.u.filter((word) => word !== 0).length).toBe(3);
  });

  it('lay out scalars in declaration order, one 32-bit word each (the adamw struct)', () => {
    const words = Object.values(UNIFORM_LAYOUTS.adamw).map((field) => field.word);
    expect(words).toEqual(words.map((_, index) => index));
  });

  it('reject a field the shader does not declare, naming it', () => {
    const layout = UNIFORM_LAYOUTS.attention as Record<string, { word: number; type: 'u32' | 'i32' | 'f32' }>;
    expect(() => setParams(emptySlot(), layout, { tq: 1, qOfset: 2 })).toThrow(/no field 'qOfset'/);
  });
});
