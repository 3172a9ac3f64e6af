import type { Command } from 'commander';
import { loadConfig, type Config } from '@imago/core';

/** The config for a command, honouring the global --config flag. */
export function configFor(cmd: Command): Config {
  const root = cmd.optsWithGlobals<{ config?: string }>();
  return loadConfig(root.config ? { file: root.config } : {});
}
