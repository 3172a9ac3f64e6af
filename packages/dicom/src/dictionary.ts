import { createRequire } from 'node:module';

/**
 * VR lookup for implicit-VR data sets, built once from dcmjs's data
 * dictionary (about 5,000 standard attributes) plus the repeating overlay and
 * curve groups that dictionary leaves out.
 */
const require = createRequire(import.meta.url);

let vrs: Map<number, string> | undefined;

function build(): Map<number, string> {
  // dcmjs ships no types for its dictionary; the shape is checked below.
  const dcmjs = require('dcmjs') as { data: { DicomMetaDictionary: { nameMap: Record<string, { tag: string; vr: string }> } } };
  const m = new Map<number, string>();
  for (const e of Object.values(dcmjs.data.DicomMetaDictionary.nameMap)) {
    const t = /^\(([0-9A-F]{4}),([0-9A-F]{4})\)$/i.exec(e.tag);
    if (!t) continue;
    const vr = normaliseVr(e.vr);
    m.set(parseInt(t[1]! + t[2]!, 16) >>> 0, vr);
  }
  return m;
}

function normaliseVr(vr: string): string {
  switch (vr) {
    case 'up': return 'UL';
    case 'ox': return 'OW';
    case 'xs': return 'US';
    case 'lt': return 'OW';
    case 'na': return 'UN';
    default: return vr;
  }
}

const OVERLAY: Record<number, string> = {
  0x0010: 'US', 0x0011: 'US', 0x0012: 'US', 0x0015: 'IS', 0x0022: 'LO', 0x0040: 'CS', 0x0045: 'LO',
  0x0050: 'SS', 0x0051: 'US', 0x0052: 'US', 0x0100: 'US', 0x0102: 'US', 0x1001: 'CS', 0x1100: 'US',
  0x1101: 'US', 0x1102: 'US', 0x1103: 'US', 0x1301: 'IS', 0x1302: 'DS', 0x1303: 'DS', 0x1500: 'LO',
  0x3000: 'OW', 0x4000: 'LT',
};

/** The VR of a tag from the dictionary, or `UN` when unknown. */
export function dictionaryVr(tag: number): string {
  const group = tag >>> 16;
  const elem = tag & 0xffff;
  if (elem === 0) return 'UL';
  if (group % 2 === 1) {
    if (elem >= 0x0010 && elem <= 0x00ff) return 'LO';
    return 'UN';
  }
  if ((group & 0xff00) === 0x6000) return OVERLAY[elem] ?? 'UN';
  if ((group & 0xff00) === 0x5000) return elem === 0x3000 ? 'OW' : 'UN';
  if (group === 0xfffe) return 'NONE';
  vrs ??= build();
  return vrs.get(tag >>> 0) ?? 'UN';
}
