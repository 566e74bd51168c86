// Where a new run goes: its directory is created one level at a time, so an unwritable place fails at once with the
// real cause — Node's recursive mkdir reports ENOENT for a read-only file system and spins forever on /proc — and
// a run that fails before training starts leaves nothing behind.
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FileError, errnoWords, isFsError } from './errors.js';

function statOrNull(path: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(path);
  } catch (err) {
    if (isFsError(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return null;
    throw err;
  }
}

/** Creates `dir` and its missing parents, one mkdir each; returns the top-most directory it created (null when
 *  `dir` already existed), which is what to remove to undo it. */
export function createRunDirectory(dir: string): string | null {
  const target = resolve(dir);
  const missing: string[] = [];
  let existing = target;
  let stat = statOrNull(existing);
  while (!stat) {
    missing.unshift(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
    stat = statOrNull(existing);
  }
  if (stat && !stat.isDirectory()) {
    throw new FileError(`cannot create run directory ${target} (${existing} is a file, not a directory: ENOTDIR)`, 'ENOTDIR', target);
  }
  for (const path of missing) {
    try {
      mkdirSync(path);
    } catch (err) {
      if (!isFsError(err)) throw err;
      if (missing[0] !== path) rmSync(missing[0], { recursive: true, force: true });
      // ENOENT with an existing parent: a file system that takes no new directories (/proc, /sys).
      const cause = err.code === 'ENOENT' ? `${dirname(path)} does not take new directories: ENOENT` : errnoWords(err.code);
      throw new FileError(`cannot create run directory ${target} (${cause})`, err.code, target);
    }
  }
  return missing[0] ?? null;
}

/** Undoes a new run that failed before training started: removes the directories `createRunDirectory` made, or
 *  empties a directory that existed (it was empty, or --force had cleared it, before the run wrote into it). */
export function removeRunStub(dir: string, created: string | null): void {
  if (created) {
    rmSync(created, { recursive: true, force: true });
    return;
  }
  const target = resolve(dir);
  for (const entry of readdirSync(target)) rmSync(join(target, entry), { recursive: true, force: true });
}
