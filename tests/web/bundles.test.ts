// The page bundles (scripts/build.mjs): what a page loads before its first chart stays small, vega and vega-lite
// come in a chunk fetched on the first chart, and the server users run serves every file a page imports.
// Reads esbuild's metafile (dist/web/meta.json), written by `npm run build`.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain ESM script without type declarations
import { resolveWebPath } from '../../scripts/serve-web.mjs';
import { repoPath } from '../support/paths.js';

interface Metafile {
  outputs: Record<string, { entryPoint?: string; inputs: Record<string, unknown>; imports: { path: string; kind: string }[] }>;
}

const META = repoPath('dist/web/meta.json');
/** Up-front JavaScript of a page (minified; the WGSL sources and the WASM engine as base64 are ~200 KiB of it; the
 *  fine-tuning page also carries the BPE tokenizer, the chat-template engine and the Parquet reader). */
const UP_FRONT_LIMIT_BYTES = 640 * 1024;

/** The output files an output reaches through imports of the given kinds, itself included. */
function reach(meta: Metafile, start: string, kinds: string[]): Set<string> {
  const seen = new Set([start]);
  for (const file of seen) {
    for (const edge of meta.outputs[file].imports) if (kinds.includes(edge.kind) && meta.outputs[edge.path]) seen.add(edge.path);
  }
  return seen;
}

const inputsOf = (meta: Metafile, files: Iterable<string>) => [...files].flatMap((file) => Object.keys(meta.outputs[file].inputs));
const isPlotLibrary = (input: string) => /node_modules\/(vega|vega-lite|d3-[a-z-]+)\//.test(input);

describe.skipIf(!existsSync(META))('page bundles', () => {
  const meta = existsSync(META) ? (JSON.parse(readFileSync(META, 'utf8')) as Metafile) : { outputs: {} };
  const pages = Object.entries(meta.outputs).filter(([file, output]) => output.entryPoint?.startsWith('web/') && file.endsWith('.js'));

  it('builds the training page and the smoke page', () => {
    expect(pages.map(([file]) => file)).toEqual(expect.arrayContaining(['dist/web/train.js', 'dist/web/smoke.js']));
  });

  it('loads no plot library up front, and the training page gets vega and vega-lite on first use', () => {
    for (const [file] of pages) {
      const upFront = reach(meta, file, ['import-statement']);
      expect(inputsOf(meta, upFront).filter(isPlotLibrary), `${file} imports plot libraries statically`).toEqual([]);
      const bytes = [...upFront].reduce((sum, f) => sum + readFileSync(repoPath(f)).length, 0);
      expect(bytes, `${file}: ${bytes} bytes up front`).toBeLessThan(UP_FRONT_LIMIT_BYTES);
    }
    const lazy = inputsOf(meta, reach(meta, 'dist/web/train.js', ['import-statement', 'dynamic-import']));
    expect(lazy.some((input) => input.includes('node_modules/vega/'))).toBe(true);
    expect(lazy.some((input) => input.includes('node_modules/vega-lite/'))).toBe(true);
  });

  it('is minified with a source map per file', () => {
    for (const file of Object.keys(meta.outputs).filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(repoPath(file), 'utf8');
      expect(text, file).toMatch(/\/\/# sourceMappingURL=[\w-]+\.js\.map\s*$/);
      expect(existsSync(repoPath(`${file}.map`)), `${file}.map`).toBe(true);
    }
    const train = readFileSync(repoPath('dist/web/train.js'), 'utf8');
    expect(train.split('\n').length, 'minified: a handful of lines').toBeLessThan(20);
  });

  it('serves every bundle file through scripts/serve-web.mjs, and nothing outside web/ and dist/web/', () => {
    for (const file of Object.keys(meta.outputs)) {
      const name = file.replace(/^dist\/web\//, '');
      expect(resolveWebPath(`/${name}`), file).toBe(repoPath(file));
    }
    for (const bad of ['/../package.json', '/%2e%2e/package.json', '/sub/chunk.js', '/meta.json', '/train.ts']) {
      expect(resolveWebPath(bad), bad).toBeNull();
    }
  });
});
