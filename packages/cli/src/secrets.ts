import { readFileSync } from 'node:fs';
import { badRequest } from '@imago/core';

/** Read a secret from a file, or from stdin when no file is named. Never from argv. */
export async function readSecretInput(file: string | undefined, what: string): Promise<string> {
  let v: string;
  if (file) {
    v = readFileSync(file, 'utf8');
  } else {
    if (process.stdin.isTTY) process.stderr.write(`${what}: `);
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    v = Buffer.concat(chunks).toString('utf8');
  }
  v = v.replace(/\r?\n$/, '');
  if (!v) throw badRequest(`${what} is empty`);
  return v;
}
