// Runs the built `dapo` command (dist/cli/main.js) as a user would, on the WASM backend, and returns its exit code
// and output instead of throwing, so tests can check failures and their messages.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { repoPath } from './paths.js';

const run = promisify(execFile);
const CLI = repoPath('dist/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function dapo(args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, DAPO_BACKEND: 'wasm' }, timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as CliResult;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
