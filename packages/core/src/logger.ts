import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Structured logs. Imago never logs request bodies or DICOM headers; as a
 * second line of defence, fields that commonly carry PHI are redacted.
 */
export const PHI_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'body',
  'req.body',
  'patientName',
  'patientId',
  'PatientName',
  'PatientID',
  'password',
  'token',
  '*.password',
  '*.token',
  '*.patientName',
  '*.patientId',
];

export function createLogger(opts: { level?: string; name?: string } & Pick<LoggerOptions, 'transport'> = {}): Logger {
  return pino({
    name: opts.name ?? 'imago',
    level: opts.level ?? 'info',
    redact: { paths: PHI_REDACT_PATHS, censor: '[redacted]' },
    ...(opts.transport ? { transport: opts.transport } : {}),
  });
}
