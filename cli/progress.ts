// Progress lines with ETA on stderr: redrawn in place on a terminal, a line every few seconds otherwise
// (CI logs, pipes), so long phases never look hung.

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  return `${hours ? `${hours}:` : ''}${String(minutes).padStart(hours ? 2 : 1, '0')}:${String(secs).padStart(2, '0')}`;
}

export class Progress {
  private phase = '';
  /** Per phase: when and at which count it began (phases interleave: rl, eval, rl …). */
  private readonly starts = new Map<string, { time: number; done: number }>();
  private lastPrint = 0;
  private pending = false;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly quiet = false) {
    this.tty = !!stream.isTTY && !process.env.CI;
  }

  update(phase: string, done: number, total: number, detail: string): void {
    if (this.quiet) return;
    const now = performance.now();
    let start = this.starts.get(phase);
    if (!start || done < start.done) {
      start = { time: now, done };
      this.starts.set(phase, start);
    }
    if (phase !== this.phase) {
      this.finishLine();
      this.phase = phase;
      this.lastPrint = 0;
    }
    const elapsed = (now - start.time) / 1000;
    const rate = (done - start.done) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : NaN;
    const width = 24;
    const filled = Math.round((width * done) / Math.max(total, 1));
    const line = `${phase.padEnd(4)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${clock(elapsed)} elapsed, ETA ${clock(eta)}  ${detail}`;
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${line}`);
      this.pending = done < total;
      if (!this.pending) this.stream.write('\n');
    } else if (done === total || now - this.lastPrint > 5000) {
      this.stream.write(`${line}\n`);
      this.lastPrint = now;
    }
  }

  /** Ends an in-place line before ordinary output. */
  finishLine(): void {
    if (this.pending) this.stream.write('\n');
    this.pending = false;
  }

  log(line: string): void {
    this.finishLine();
    this.stream.write(`${line}\n`);
  }
}
