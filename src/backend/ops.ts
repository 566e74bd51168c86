// The op table: every elementwise unary/binary op and every reduction, with the numeric code that the
// WGSL and AssemblyScript kernels switch on. scripts/build.mjs reads this file (so it must stay a leaf
// module with no imports) and generates the kernel-side constants from it: shaders/include/ops.gen.wgsl
// and engine/ops.gen.ts. Codes are dense per kind and must never be renumbered casually: they are the
// contract between the host and the compiled kernels.

/** heavy: transcendental or pow, several times the cost of an add; the WASM backend splits such work finer. */
export type OpCost = 'light' | 'heavy';

export interface OpInfo {
  readonly kind: 'unary' | 'binary' | 'reduce';
  readonly name: string;
  /** The kernel's switch value; equals the op's index within its kind. */
  readonly code: number;
  readonly cost: OpCost;
  /** The AssemblyScript engine has a 4-lane SIMD loop for it (otherwise it runs scalar). */
  readonly simd: boolean;
  /** Tensor operands; unary ops named `…Scalar` also take the kernel's scalar argument. */
  readonly arity: 1 | 2;
}

export const OP_TABLE = [
  { kind: 'unary', name: 'neg', code: 0, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'exp', code: 1, cost: 'heavy', simd: true, arity: 1 },
  { kind: 'unary', name: 'log', code: 2, cost: 'heavy', simd: false, arity: 1 },
  { kind: 'unary', name: 'sqrt', code: 3, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'rsqrt', code: 4, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'relu', code: 5, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'silu', code: 6, cost: 'heavy', simd: true, arity: 1 },
  { kind: 'unary', name: 'sigmoid', code: 7, cost: 'heavy', simd: true, arity: 1 },
  { kind: 'unary', name: 'tanh', code: 8, cost: 'heavy', simd: true, arity: 1 },
  { kind: 'unary', name: 'abs', code: 9, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'square', code: 10, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'reciprocal', code: 11, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'powScalar', code: 12, cost: 'heavy', simd: false, arity: 1 },
  { kind: 'unary', name: 'mulScalar', code: 13, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'addScalar', code: 14, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'reluGrad', code: 15, cost: 'light', simd: true, arity: 1 },
  { kind: 'unary', name: 'siluGrad', code: 16, cost: 'heavy', simd: true, arity: 1 },
  { kind: 'unary', name: 'sign', code: 17, cost: 'light', simd: true, arity: 1 },

  { kind: 'binary', name: 'add', code: 0, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'sub', code: 1, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'mul', code: 2, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'div', code: 3, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'max', code: 4, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'min', code: 5, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'pow', code: 6, cost: 'heavy', simd: false, arity: 2 },
  { kind: 'binary', name: 'eq', code: 7, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'ne', code: 8, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'lt', code: 9, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'le', code: 10, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'gt', code: 11, cost: 'light', simd: true, arity: 2 },
  { kind: 'binary', name: 'ge', code: 12, cost: 'light', simd: true, arity: 2 },

  { kind: 'reduce', name: 'sum', code: 0, cost: 'light', simd: true, arity: 1 },
  { kind: 'reduce', name: 'max', code: 1, cost: 'light', simd: true, arity: 1 },
  { kind: 'reduce', name: 'min', code: 2, cost: 'light', simd: true, arity: 1 },
] as const satisfies readonly OpInfo[];

type Entry = (typeof OP_TABLE)[number];
type NamesOf<Kind extends OpInfo['kind']> = Extract<Entry, { kind: Kind }>['name'];

export type UnaryOp = NamesOf<'unary'>;
export type BinaryOp = NamesOf<'binary'>;
export type ReduceOp = NamesOf<'reduce'>;

function opsOf<Kind extends OpInfo['kind']>(kind: Kind): readonly NamesOf<Kind>[] {
  return OP_TABLE.filter((op) => op.kind === kind).map((op) => op.name as NamesOf<Kind>);
}
function codesOf<Kind extends OpInfo['kind']>(kind: Kind): Record<NamesOf<Kind>, number> {
  return Object.fromEntries(OP_TABLE.filter((op) => op.kind === kind).map((op) => [op.name, op.code])) as Record<NamesOf<Kind>, number>;
}
function infoOf<Kind extends OpInfo['kind']>(kind: Kind): Record<NamesOf<Kind>, OpInfo> {
  return Object.fromEntries(OP_TABLE.filter((op) => op.kind === kind).map((op) => [op.name, op])) as Record<NamesOf<Kind>, OpInfo>;
}

/** Ops in code order (the order tests iterate). */
export const UNARY_OPS: readonly UnaryOp[] = opsOf('unary');
export const BINARY_OPS: readonly BinaryOp[] = opsOf('binary');
export const REDUCE_OPS: readonly ReduceOp[] = opsOf('reduce');

/** Stable numeric codes shared by every backend's kernels (WGSL switch, AssemblyScript switch). */
export const UNARY_CODE: Record<UnaryOp, number> = codesOf('unary');
export const BINARY_CODE: Record<BinaryOp, number> = codesOf('binary');
export const REDUCE_CODE: Record<ReduceOp, number> = codesOf('reduce');

export const UNARY_INFO: Record<UnaryOp, OpInfo> = infoOf('unary');
export const BINARY_INFO: Record<BinaryOp, OpInfo> = infoOf('binary');
export const REDUCE_INFO: Record<ReduceOp, OpInfo> = infoOf('reduce');

/** Transcendental or pow: worth splitting across more threads than a cheap op. */
export function isHeavyUnary(op: UnaryOp): boolean { return UNARY_INFO[op].cost === 'heavy'; }
export function isHeavyBinary(op: BinaryOp): boolean { return BINARY_INFO[op].cost === 'heavy'; }
