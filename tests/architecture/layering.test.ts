// The layering check of scripts/check-layers.mjs: first on synthetic graphs (so we know it can fail), then on
// the repository, where it must find no import cycle, no upward import and no Node code in browser modules.
import { describe, expect, it } from 'vitest';
import { buildGraph, checkGraph, checkRepository, findCycles, findLayerViolations, findNodeImports, importSpecifiers } from '../../scripts/check-layers.mjs';

/** A graph from inline sources: repository path → TypeScript text. */
function graphOf(sources: Record<string, string>) {
  return buildGraph(new Map(Object.entries(sources)));
}

describe('layering check on synthetic graphs', () => {
  it('reads static, type-only, re-export and dynamic imports, but not comments or strings', () => {
    const source = [
      "import type { A } from './a.js';",
      "export { b } from './b.js';",
      "export * from './c.js';",
      "const d = await import('./d.js');",
      "// import { e } from './commented.js';",
      "const text = \"import { f } from './in_string.js'\";",
      "import {\n  g,\n} from 'node:fs';",
    ].join('\n');
    expect(importSpecifiers(source)).toEqual(['./a.js', './b.js', './c.js', './d.js', 'node:fs']);
  });

  it('reports a cycle with its path, type-only edges included', () => {
    const graph = graphOf({
      'src/tensor/a.ts': "import { b } from './b.js';",
      'src/tensor/b.ts': "import type { C } from './c.js';",
      'src/tensor/c.ts': "export { a } from './a.js';",
      'src/tensor/d.ts': "import { a } from './a.js';",
    });
    expect(findCycles(graph).map((cycle) => cycle.path)).toEqual([['src/tensor/a.ts', 'src/tensor/b.ts', 'src/tensor/c.ts', 'src/tensor/a.ts']]);
    expect(checkGraph(graph)).toEqual(['import cycle: src/tensor/a.ts → src/tensor/b.ts → src/tensor/c.ts → src/tensor/a.ts']);
  });

  it('reports an import from a lower layer to a higher one, and between siblings without leave', () => {
    const graph = graphOf({
      'src/backend/kernels.ts': "import { Tensor } from '../tensor/tensor.js';",
      'src/tensor/tensor.ts': '',
      'src/plot/chart.ts': "import { trainer } from '../rl/trainer.js';",
      'src/rl/trainer.ts': "import { task } from '../data/task.js';",
      'src/data/task.ts': '',
    });
    expect(findLayerViolations(graph)).toEqual([
      'src/backend/kernels.ts (backend) imports src/tensor/tensor.ts from the higher layer tensor/autograd',
      'src/plot/chart.ts imports src/rl/trainer.ts: src/plot/ may not import its sibling src/rl/ in layer data/rl/plot',
    ]);
  });

  it('accepts a downward graph', () => {
    const graph = graphOf({
      'cli/main.ts': "import { x } from '../src/node.js';",
      'src/node.ts': "export * from './index.js'; import { readFileSync } from 'node:fs';",
      'src/index.ts': "export * from './rl/trainer.js';",
      'src/rl/trainer.ts': "import { task } from '../data/task.js'; import { t } from '../tensor/tensor.js';",
      'src/data/task.ts': '',
      'src/tensor/tensor.ts': "import type { TapeNode } from '../autograd/tape.js';",
      'src/autograd/tape.ts': '',
    });
    expect(checkGraph(graph)).toEqual([]);
  });

  it('reports files outside every layer', () => {
    expect(findLayerViolations(graphOf({ 'src/stray/x.ts': '' }))).toEqual([
      'src/stray/x.ts is in no layer: add its folder to LAYERS in scripts/check-layers.mjs',
    ]);
  });

  it('keeps Node modules, Node-only packages and Node adapters out of browser modules', () => {
    const graph = graphOf({
      'src/io/files.ts': "import { readFileSync } from 'node:fs'; import { join } from 'path';",
      'src/backend/gpu.ts': "import { create } from 'webgpu';",
      'src/rl/trainer.ts': "import { saveCheckpoint } from '../io/node_files.js';",
      'src/io/node_files.ts': "import { writeFileSync } from 'node:fs';",
      'web/page.ts': "import { svgToPng } from '../src/plot/png_node.js'; import { parse } from 'vega';",
      'src/plot/png_node.ts': "import { Resvg } from '@resvg/resvg-wasm';",
    });
    expect(findNodeImports(graph)).toEqual([
      "src/io/files.ts imports the Node module 'node:fs' but is not a Node adapter",
      "src/io/files.ts imports the Node module 'path' but is not a Node adapter",
      "src/backend/gpu.ts imports the Node-only package 'webgpu' but is not a Node adapter",
      'src/rl/trainer.ts imports the Node adapter src/io/node_files.ts, which would pull Node code into the browser bundle',
      'web/page.ts imports the Node adapter src/plot/png_node.ts, which would pull Node code into the browser bundle',
    ]);
  });
});

describe('layering of the repository', () => {
  it('has no import cycle, no upward import and no Node code outside the Node adapters', () => {
    const problems = checkRepository();
    expect(problems, `layering check:\n${problems.join('\n')}`).toEqual([]);
  });
});
