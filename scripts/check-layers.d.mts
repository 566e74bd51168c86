// Types of scripts/check-layers.mjs for the TypeScript tests that import it.
export interface Layer {
  name: string;
  /** Folders (ending in '/') or single files, relative to the repository root. */
  units: string[];
  /** Per unit, the sibling units of the same layer it may import. */
  siblings?: Record<string, string[]>;
}
export interface ModuleImports {
  /** Repository paths of the relative imports. */
  imports: string[];
  /** Bare specifiers (packages and Node modules). */
  packages: string[];
}
export type ModuleGraph = Map<string, ModuleImports>;

export const LAYERS: Layer[];
export const NODE_ADAPTERS: string[];
export const NODE_ONLY_PACKAGES: string[];
export const CHECKED_ROOTS: string[];
export const REPOSITORY_ROOT: string;
export function importSpecifiers(source: string): string[];
export function resolveRelative(fromFile: string, specifier: string): string;
export function buildGraph(sources: Map<string, string>): ModuleGraph;
export function readSources(root: string): Map<string, string>;
export function findCycles(graph: ModuleGraph): { members: string[]; path: string[] }[];
export function placeOf(file: string, layers?: Layer[]): { layer: number; unit: string } | null;
export function findLayerViolations(graph: ModuleGraph, layers?: Layer[]): string[];
export function findNodeImports(graph: ModuleGraph, adapters?: string[], nodeOnlyPackages?: string[]): string[];
export function checkGraph(graph: ModuleGraph): string[];
export function checkRepository(root?: string): string[];
