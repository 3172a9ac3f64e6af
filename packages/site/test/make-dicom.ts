import { closeSync, openSync, writeSync } from 'node:fs';
import { encodeElement } from '@imago/dicom';
import { part10Header } from '../src/dimse.js';

const LE = { explicit: true, little: true };

export interface MakeSpec {
  patientId: string;
  patientName?: string;
  issuer?: string;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  modality?: 'CT' | 'DX';
  rows?: number;
  columns?: number;
  frames?: number;
  seed?: number;
  /** BurnedInAnnotation YES: the site quarantines it for a person. */
  burnedIn?: boolean;
}

/** An identifiable CT or DX instance (Explicit VR LE), written in pieces so large ones never sit in memory whole. */
export function writeInstance(path: string, s: MakeSpec): void {
  const modality = s.modality ?? 'CT';
  const sopClass = modality === 'CT' ? '1.2.840.10008.5.1.4.1.1.2' : '1.2.840.10008.5.1.4.1.1.1.1';
  const rows = s.rows ?? 64;
  const cols = s.columns ?? 64;
  const frames = s.frames ?? 1;
  const els: Buffer[] = [
    encodeElement(0x00080008, 'CS', 'ORIGINAL\\PRIMARY\\AXIAL', LE),
    encodeElement(0x00080016, 'UI', sopClass, LE),
    encodeElement(0x00080018, 'UI', s.sopUid, LE),
    encodeElement(0x00080020, 'DA', '20200401', LE),
    encodeElement(0x00080030, 'TM', '101500', LE),
    encodeElement(0x00080050, 'SH', 'ACC12345', LE),
    encodeElement(0x00080060, 'CS', modality, LE),
    encodeElement(0x00080080, 'LO', 'St Elsewhere Hospital', LE),
    encodeElement(0x00080090, 'PN', 'Dr^Referrer', LE),
    encodeElement(0x00100010, 'PN', s.patientName ?? 'Doe^Jane', LE),
    encodeElement(0x00100020, 'LO', s.patientId, LE),
    ...(s.issuer ? [encodeElement(0x00100021, 'LO', s.issuer, LE)] : []),
    encodeElement(0x00100030, 'DA', '19530412', LE),
    encodeElement(0x00100040, 'CS', 'F', LE),
    encodeElement(0x00101010, 'AS', '067Y', LE),
    encodeElement(0x00180015, 'CS', 'CHEST', LE),
    encodeElement(0x0020000d, 'UI', s.studyUid, LE),
    encodeElement(0x0020000e, 'UI', s.seriesUid, LE),
    encodeElement(0x00200011, 'IS', '1', LE),
    encodeElement(0x00200013, 'IS', '1', LE),
    encodeElement(0x00280002, 'US', Buffer.from([1, 0]), LE),
    encodeElement(0x00280004, 'CS', 'MONOCHROME2', LE),
    ...(frames > 1 ? [encodeElement(0x00280008, 'IS', String(frames), LE)] : []),
    encodeElement(0x00280010, 'US', Buffer.from([rows & 0xff, rows >> 8]), LE),
    encodeElement(0x00280011, 'US', Buffer.from([cols & 0xff, cols >> 8]), LE),
    encodeElement(0x00280100, 'US', Buffer.from([16, 0]), LE),
    encodeElement(0x00280101, 'US', Buffer.from([12, 0]), LE),
    encodeElement(0x00280102, 'US', Buffer.from([11, 0]), LE),
    encodeElement(0x00280103, 'US', Buffer.from([0, 0]), LE),
    ...(s.burnedIn ? [encodeElement(0x00280301, 'CS', 'YES', LE)] : []),
  ];
  const pixelBytes = rows * cols * 2 * frames;
  const ph = Buffer.alloc(12);
  ph.writeUInt16LE(0x7fe0, 0);
  ph.writeUInt16LE(0x0010, 2);
  ph.write('OW', 4, 'latin1');
  ph.writeUInt32LE(pixelBytes, 8);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, part10Header(sopClass, s.sopUid, '1.2.840.10008.1.2.1', 'MAKER'));
    writeSync(fd, Buffer.concat([...els, ph]));
    const chunk = Buffer.alloc(Math.min(pixelBytes, 8 << 20));
    let seed = (s.seed ?? 1) >>> 0;
    for (let i = 0; i + 4 <= chunk.length; i += 4) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      chunk.writeUInt32LE(seed & 0x0fff0fff, i);
    }
    let left = pixelBytes;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      writeSync(fd, chunk, 0, n);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

export function uid(...parts: number[]): string {
  return `1.2.826.0.1.3680043.9.7777.${parts.join('.')}`;
}
