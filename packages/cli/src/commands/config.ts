import type { Command } from 'commander';
import { redactConfig } from '@imago/core';
import { configFor } from '../context.js';

export function register(program: Command): void {
  const config = program.command('config').description('configuration');
  config
    .command('print')
    .description('print the effective configuration with secrets redacted')
    .action((_o: unknown, cmd: Command) => {
      console.log(JSON.stringify(redactConfig(configFor(cmd)), null, 2));
    });
}
