// Files of the repository by their path from its root, so a test reads the same string whichever folder
// under tests/ it lives in.
import { join } from 'node:path';

const REPO_ROOT = join(import.meta.dirname, '..', '..');

/** The absolute path of a repository file, e.g. repoPath('dist/web/smoke.js'). */
export function repoPath(relative: string): string {
  return join(REPO_ROOT, relative);
}
