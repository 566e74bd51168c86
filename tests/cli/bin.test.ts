// `npx dapo …` (the README's first command) runs package.json's bin file itself: it must be executable, with a
// shebang, as the build leaves it (tsc alone writes it 0644, and npx then fails with "dapo: Permission denied").
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../support/paths.js';

describe('the dapo bin', () => {
  it('is the built CLI, executable directly, and answers --help', () => {
    const bin = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')).bin.dapo as string;
    const path = repoPath(bin);
    expect(readFileSync(path, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const help = execFileSync(path, ['--help'], { encoding: 'utf8' });
    expect(help).toMatch(/Usage: dapo/);
    expect(help).toMatch(/train/);
  });
});
