// The layering check (issue #8): builds the module graph of src/, cli/ and web/ from every relative import
// (static, `import type`, `export … from` and dynamic `import()`) and reports
//   - import cycles (type-only imports count: a cycle of types is still two modules that cannot be read apart),
//   - imports from a lower layer to a higher one, or between sibling folders of one layer that the order below
//     does not allow,
//   - browser-reachable code (src/ and web/, except the Node adapter files) importing a Node module, a
//     Node-only package or a Node adapter.
// `node scripts/check-layers.mjs` prints the problems and exits 1; tests/layering.test.ts runs the same check.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * Layers, lowest first, as the README's architecture section states. A module may import its own folder, any
 * lower layer, and a sibling folder of its own layer only when `siblings` lists it (the order inside a layer).
 */
export const LAYERS = [
  { name: 'backend', units: ['src/backend/'] },
  // The tape and the ops are one layer: ops record nodes, backward() runs ops. Only file cycles are banned.
  { name: 'tensor/autograd', units: ['src/tensor/', 'src/autograd/'], siblings: { 'src/tensor/': ['src/autograd/'], 'src/autograd/': ['src/tensor/'] } },
  // io serialises models and optimizers (checkpoints), so it sits above nn and optim.
  { name: 'nn/optim/io', units: ['src/nn/', 'src/optim/', 'src/io/'], siblings: { 'src/io/': ['src/nn/', 'src/optim/'] } },
  // The trainer draws problems from the tasks; plots only read metrics records and stand alone.
  { name: 'data/rl/plot', units: ['src/data/', 'src/rl/', 'src/plot/'], siblings: { 'src/rl/': ['src/data/'] } },
  { name: 'bench', units: ['src/bench/'] },
  // The Node and browser entries re-export the platform-neutral index.
  { name: 'entries', units: ['src/index.ts', 'src/node.ts', 'src/browser.ts', 'src/browser_engine.ts'], siblings: { 'src/node.ts': ['src/index.ts'], 'src/browser.ts': ['src/index.ts', 'src/browser_engine.ts'] } },
  { name: 'cli/web', units: ['cli/', 'web/'] },
];

/** The only files under src/ that may touch Node: everything else must also run in a browser. */
export const NODE_ADAPTERS = [
  'src/node.ts',
  'src/backend/webgpu/node_gpu.ts',
  'src/backend/wasm/node_workers.ts',
  'src/io/node_files.ts',
  'src/data/datasets_node.ts',
  'src/data/reward_module_node.ts',
  'src/io/pretrained_node.ts',
  'src/rl/run_dir_node.ts',
  'src/rl/pretrained_run_node.ts',
  'src/data/tokenizer_node.ts',
  'src/plot/png_node.ts',
];

/** Packages that only work in Node here (Dawn bindings; resvg and its font, loaded from disk). */
export const NODE_ONLY_PACKAGES = ['webgpu', '@resvg/resvg-wasm', 'dejavu-fonts-ttf'];

/** Folders whose modules are checked, relative to the repository root. */
export const CHECKED_ROOTS = ['src', 'cli', 'web'];

const NODE_BUILTINS = new Set(builtinModules);

/** Every module specifier in a TypeScript source, comments and strings excluded. */
export function importSpecifiers(source) {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The repository path ('src/x/y.ts') a relative specifier names; NodeNext sources write '.js' for '.ts'. */
export function resolveRelative(fromFile, specifier) {
  const target = posix.normalize(posix.join(posix.dirname(fromFile), specifier));
  return target.replace(/\.js$/, '.ts');
}

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isNodeModule(specifier) {
  return specifier.startsWith('node:') || NODE_BUILTINS.has(packageName(specifier));
}

/**
 * The module graph: file → { imports: repository paths of relative imports, packages: bare specifiers }.
 * `sources` maps repository paths to their text, so tests can check a synthetic graph.
 */
export function buildGraph(sources) {
  const graph = new Map();
  for (const [file, text] of sources) {
    const imports = [];
    const packages = [];
    for (const specifier of importSpecifiers(text)) {
      if (specifier.startsWith('.')) imports.push(resolveRelative(file, specifier));
      else packages.push(specifier);
    }
    graph.set(file, { imports: [...new Set(imports)], packages: [...new Set(packages)] });
  }
  return graph;
}

/** Reads every .ts module under the checked roots (generated *.gen.ts included when built). */
export function readSources(root) {
  const sources = new Map();
  const walk = (dir) => {
    for (const name of readdirSync(join(root, dir))) {
      const path = join(dir, name);
      if (statSync(join(root, path)).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) sources.set(path.split(sep).join('/'), readFileSync(join(root, path), 'utf8'));
    }
  };
  for (const dir of CHECKED_ROOTS) walk(dir);
  return sources;
}

/**
 * Each strongly connected component of two or more modules (or a self-import): its members, sorted, and one
 * shortest cycle path a → … → a through the first of them.
 */
export function findCycles(graph) {
  // Tarjan's algorithm, iterative so deep graphs cannot overflow the stack.
  const indexOf = new Map();
  const lowLink = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  let nextIndex = 0;
  const edges = (file) => (graph.get(file)?.imports ?? []).filter((target) => graph.has(target));
  for (const start of [...graph.keys()].sort()) {
    if (indexOf.has(start)) continue;
    const work = [{ file: start, edge: 0 }];
    indexOf.set(start, nextIndex);
    lowLink.set(start, nextIndex++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1];
      const targets = edges(frame.file);
      if (frame.edge < targets.length) {
        const target = targets[frame.edge++];
        if (!indexOf.has(target)) {
          indexOf.set(target, nextIndex);
          lowLink.set(target, nextIndex++);
          stack.push(target);
          onStack.add(target);
          work.push({ file: target, edge: 0 });
        } else if (onStack.has(target)) {
          lowLink.set(frame.file, Math.min(lowLink.get(frame.file), indexOf.get(target)));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1].file;
        lowLink.set(parent, Math.min(lowLink.get(parent), lowLink.get(frame.file)));
      }
      if (lowLink.get(frame.file) === indexOf.get(frame.file)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.file);
        if (component.length > 1 || edges(frame.file).includes(frame.file)) components.push(component);
      }
    }
  }
  return components.map((component) => ({ members: component.sort(), path: cyclePath(graph, new Set(component)) }));
}

/** A shortest cycle through the component's first module (sorted), found by breadth-first search. */
function cyclePath(graph, members) {
  const start = [...members].sort()[0];
  const previous = new Map();
  const queue = [start];
  while (queue.length) {
    const file = queue.shift();
    for (const target of graph.get(file).imports) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [file];
        while (path[0] !== start) path.unshift(previous.get(path[0]));
        return [...path, start];
      }
      if (!previous.has(target)) {
        previous.set(target, file);
        queue.push(target);
      }
    }
  }
  throw new Error(`internal: no cycle through ${start}`);
}

/** The layer index and unit (folder or entry file) of a repository path, or null outside every layer. */
export function placeOf(file, layers = LAYERS) {
  for (let layer = 0; layer < layers.length; layer++) {
    for (const unit of layers[layer].units) {
      if (unit.endsWith('/') ? file.startsWith(unit) : file === unit) return { layer, unit };
    }
  }
  return null;
}

/** Imports that point up the layer order, across sibling folders without leave, or from files in no layer. */
export function findLayerViolations(graph, layers = LAYERS) {
  const problems = [];
  for (const [file, { imports }] of graph) {
    const from = placeOf(file, layers);
    if (!from) {
      problems.push(`${file} is in no layer: add its folder to LAYERS in scripts/check-layers.mjs`);
      continue;
    }
    for (const target of imports) {
      const to = placeOf(target, layers);
      if (!to) continue; // data files and build outputs outside the checked roots
      if (to.layer > from.layer) {
        problems.push(`${file} (${layers[from.layer].name}) imports ${target} from the higher layer ${layers[to.layer].name}`);
      } else if (to.layer === from.layer && to.unit !== from.unit) {
        const allowed = layers[from.layer].siblings?.[from.unit] ?? [];
        if (!allowed.includes(to.unit)) {
          problems.push(`${file} imports ${target}: ${from.unit} may not import its sibling ${to.unit} in layer ${layers[from.layer].name}`);
        }
      }
    }
  }
  return problems;
}

/** Browser-reachable modules (src/ and web/ minus the adapters) that import Node modules, packages or adapters. */
export function findNodeImports(graph, adapters = NODE_ADAPTERS, nodeOnlyPackages = NODE_ONLY_PACKAGES) {
  const adapterSet = new Set(adapters);
  const problems = [];
  for (const [file, { imports, packages }] of graph) {
    if (!(file.startsWith('src/') || file.startsWith('web/')) || adapterSet.has(file)) continue;
    for (const specifier of packages) {
      if (isNodeModule(specifier)) problems.push(`${file} imports the Node module '${specifier}' but is not a Node adapter`);
      else if (nodeOnlyPackages.includes(packageName(specifier))) problems.push(`${file} imports the Node-only package '${specifier}' but is not a Node adapter`);
    }
    for (const target of imports) {
      if (adapterSet.has(target)) problems.push(`${file} imports the Node adapter ${target}, which would pull Node code into the browser bundle`);
    }
  }
  return problems;
}

/** Every problem in the graph, cycles first, as readable lines. */
export function checkGraph(graph) {
  return [
    ...findCycles(graph).map(({ members, path }) => `import cycle: ${path.join(' → ')}`
      + (members.length > path.length - 1 ? ` (one cycle among the ${members.length} modules ${members.join(', ')})` : '')),
    ...findLayerViolations(graph),
    ...findNodeImports(graph),
  ];
}

export const REPOSITORY_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The check over the repository's sources. */
export function checkRepository(root = REPOSITORY_ROOT) {
  return checkGraph(buildGraph(readSources(root)));
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const problems = checkRepository();
  if (problems.length) {
    console.error(`layering check: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`);
    process.exit(1);
  }
  console.log('layering check: no import cycles, every import points down the layers');
}
