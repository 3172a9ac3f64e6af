import cliProgress from 'cli-progress';

export interface Progress {
  tick(n?: number, payload?: Record<string, string | number>): void;
  setTotal(total: number): void;
  stop(): void;
}

/**
 * A progress bar for long CLI work. On a terminal it draws a bar; otherwise
 * (CI, pipes) it prints a line at most every 2 s so logs stay readable.
 */
export function progress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`, hideCursor: true, stream },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return {
      tick: (n = 1, payload) => bar.increment(n, payload),
      setTotal: (t) => bar.setTotal(t),
      stop: () => bar.stop(),
    };
  }
  let done = 0;
  let last = 0;
  let tot = total;
  const line = () => stream.write(`${label}: ${done}/${tot}\n`);
  return {
    tick(n = 1) {
      done += n;
      const now = Date.now();
      if (now - last > 2000) {
        last = now;
        line();
      }
    },
    setTotal(t) {
      tot = t;
    },
    stop() {
      line();
    },
  };
}
