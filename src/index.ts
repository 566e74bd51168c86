// Platform-neutral public API (safe to bundle for browsers).
export * from './tensor/index.js';
export type { Backend, BackendName, DType, MemoryStats, Storage } from './backend/backend.js';
export { ReferenceBackend } from './backend/reference/reference_backend.js';
export { type BackendChoice, type Platform, type Selection, BACKEND_CHOICES, createBackend, decide, parseBackendChoice } from './backend/select.js';
