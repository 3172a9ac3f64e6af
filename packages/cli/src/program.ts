import { Command } from 'commander';
import * as auditCmd from './commands/audit.js';
import * as configCmd from './commands/config.js';
import * as hubCmd from './commands/hub.js';
import * as siteCmd from './commands/site.js';
import * as deidCmd from './commands/deid.js';
import * as synthCmd from './commands/synth.js';
import * as startCmd from './commands/start.js';
import * as tokenCmd from './commands/token.js';
import * as userCmd from './commands/user.js';

/**
 * Each command module exports `register(program)`. Add new command groups
 * here, one line each.
 */
const MODULES: Array<{ register(program: Command): void }> = [startCmd, synthCmd, userCmd, tokenCmd, auditCmd, configCmd, deidCmd, siteCmd, hubCmd];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('imago')
    .description('Imago: open national medical-imaging platform for AI')
    .option('-c, --config <file>', 'configuration file (default imago.config.json)')
    .showHelpAfterError()
    .exitOverride();
  for (const m of MODULES) m.register(program);
  return program;
}
