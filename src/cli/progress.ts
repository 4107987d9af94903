/** A one-line progress bar on a terminal: NFE used / budget, best reward, elapsed and remaining. */
export class ProgressBar {
  private readonly start = performance.now();
  private last = 0;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  static enabled(json: boolean, out: NodeJS.WriteStream = process.stderr): boolean {
    return !json && !!out.isTTY;
  }

  update(done: number, total: number, label: string, force = false): void {
    const now = performance.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const width = 28;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const elapsed = (now - this.start) / 1000;
    const eta = frac > 0 ? (elapsed * (1 - frac)) / frac : NaN;
    const t = (s: number) =>
      Number.isFinite(s) ? `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}` : '--:--';
    this.out.write(`\r${bar} ${done}/${total} NFE  ${label}  ${t(elapsed)} elapsed, ${t(eta)} left\x1b[K`);
  }

  done(): void {
    this.out.write('\n');
  }
}
