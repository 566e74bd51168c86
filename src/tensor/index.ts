// The tensor API in one import.
export { Tensor, isTensor } from './tensor.js';
export { setBackend, getBackend, hasBackend, noGrad, withGrad, tidy, keep, isGradEnabled } from './engine.js';
export * from './creation.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './layout.js';
export * from './linalg.js';
export * from './nn_ops.js';
export * from './model_ops.js';
export * from './linear_logprob_ops.js';
export * from './checkpoint_ops.js';
export * from './low_rank_ops.js';
export * from './loss_ops.js';
export { binaryRaw, broadcastToRaw, copyView, reduceRaw, sumToShape, unaryRaw } from './raw.js';
export { backward } from '../autograd/backward.js';
export { gradcheck } from '../autograd/gradcheck.js';
