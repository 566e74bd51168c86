// Browser entry point: the whole library (src/index.ts) plus the browser's engine start-up (navigator.gpu, Web
// Workers). Pages import the modules they use directly; this barrel is for library users.
export * from './index.js';
export { browserPlatform, initEngine } from './browser_engine.js';
