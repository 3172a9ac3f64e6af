#!/usr/bin/env node
import { CommanderError } from 'commander';
import { ConfigError, ImagoError } from '@imago/core';
import { buildProgram } from './program.js';

/**
 * Exit codes: 0 success, 1 the operation failed (e.g. verification found a
 * broken chain), 2 usage error, 78 configuration error (EX_CONFIG).
 */
async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exitCode = 78;
      return;
    }
    if (e instanceof ImagoError) {
      console.error(`error: ${e.message}`);
      for (const i of e.issues ?? []) console.error(`  ${i.path}: ${i.message}`);
      process.exitCode = e.code === 'badRequest' || e.code === 'unprocessable' ? 2 : 1;
      return;
    }
    console.error(`error: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

await main();
