import { join } from 'node:path';
import { openDatabase } from '@imago/db';
// @imago/testkit is not linked into node_modules yet (needs an `npm install`), hence the relative import.
import { tempDir } from '../../testkit/src/index.js';
import { jobQueueContract } from './contract.js';

jobQueueContract({
  label: 'sqlite',
  openDb: () => openDatabase(`sqlite:${join(tempDir('imago-jobs-'), 'jobs.db')}`),
});
