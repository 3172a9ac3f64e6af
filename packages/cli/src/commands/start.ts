import type { Command } from 'commander';
import { configFor } from '../context.js';
import { readDemoLogins, startPlatform } from '../platform.js';

export function register(program: Command): void {
  program
    .command('start')
    .description('start every part of the platform in one process (embedded default: SQLite and ./data)')
    .option('--demo', 'create demo users and load the synthetic demo dataset the first time')
    .option('-p, --port <port>', 'HTTP port (overrides http.port)')
    .action(async (opts: { demo?: boolean; port?: string }, cmd: Command) => {
      const config = configFor(cmd);
      if (opts.port !== undefined) {
        const port = Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: not a port number: ${opts.port}`);
        config.http.port = port;
      }
      const p = await startPlatform(config, { demo: !!opts.demo, onProgress: (m) => process.stdout.write(`${m}\n`) });
      const out = process.stdout;
      out.write(`\nImago is running.\n  Web UI and API: ${p.url}/\n  OpenAPI:        ${p.url}/openapi.json\n  Health:         ${p.url}/healthz\n  Metrics:        ${p.url}/metrics\n`);
      if (opts.demo) {
        const logins = readDemoLogins(config);
        if (logins.length) {
          out.write(`\nDemo logins (also in ${config.dataDir}/demo-logins.txt):\n`);
          for (const l of logins) out.write(`  ${l.username.padEnd(12)} ${l.password.padEnd(20)} ${l.roles}\n`);
        }
      }
      out.write('\nPress Ctrl+C to stop.\n');
      const stop = async () => {
        await p.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}
