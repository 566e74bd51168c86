// scripts/serve-web.mjs on a port that is taken, or an --host that is not an address of this machine: one clear line
// and exit 1, no unhandled 'error' event and no stack trace.
import { execFile } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../support/paths.js';

const run = promisify(execFile);

async function serveWeb(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [repoPath('scripts/serve-web.mjs'), ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('serve-web listen errors', () => {
  it('a port in use: one line naming the port, exit 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const r = await serveWeb(['--port', String(port)]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(`serve-web: cannot listen on 127.0.0.1:${port}: port ${port} is already in use (pick another with --port, or stop the other server)`);
    } finally {
      taken.close();
    }
  });

  it('an address not on this machine, or a host name that does not resolve: one line, exit 1', async () => {
    // TEST-NET-1 (RFC 5737): never an address of this machine.
    const foreign = await serveWeb(['--port', '0', '--host', '192.0.2.1']);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr.trim()).toBe('serve-web: cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine (use 127.0.0.1, 0.0.0.0 or one of its interfaces with --host)');
    const unknown = await serveWeb(['--port', '0', '--host', 'no-such-host.invalid']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(/^serve-web: cannot listen on no-such-host\.invalid:0: the host name no-such-host\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\)$/);
  });
});
