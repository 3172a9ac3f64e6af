import type { Rng } from './prng.js';

/**
 * Realistic-looking but clearly fake personal data. Names are common English
 * names; NHS numbers use the 999 range that NHS England reserves for testing
 * (with a valid modulus-11 check digit); postcodes use the ZZ99 pseudo-postcode
 * area; towns are invented.
 */

const GIVEN_F = ['Olivia', 'Amelia', 'Isla', 'Ava', 'Mia', 'Grace', 'Sophia', 'Lily', 'Freya', 'Emily', 'Aisha', 'Priya', 'Fatima', 'Zara', 'Chloe', 'Hannah', 'Ruth', 'Margaret', 'Susan', 'Patricia', 'Mei', 'Ngozi', 'Siobhan', 'Joan', 'Eleanor', 'Amira', 'Sunita', 'Beatrice'];
const GIVEN_M = ['Oliver', 'George', 'Arthur', 'Noah', 'Muhammad', 'Leo', 'Harry', 'Oscar', 'Jack', 'Thomas', 'David', 'Peter', 'Rajesh', 'Imran', 'Kwame', 'Liam', 'Patrick', 'Wei', 'Samuel', 'Edward', 'Michael', 'Gareth', 'Ian', 'Kofi', 'Arjun', 'Colin', 'Dennis', 'Yusuf'];
const FAMILY = ['Smith', 'Jones', 'Taylor', 'Brown', 'Williams', 'Wilson', 'Johnson', 'Davies', 'Patel', 'Robinson', 'Wright', 'Thompson', 'Evans', 'Walker', 'White', 'Roberts', 'Green', 'Hall', 'Khan', 'Ahmed', 'Okafor', 'Mensah', 'Chen', 'Murphy', "O'Brien", 'Hughes', 'Edwards', 'Clarke', 'Begum', 'Singh', 'Kowalski', 'Campbell', 'Lewis', 'Ali', 'Hussain', 'Fletcher', 'Ashworth', 'Pemberton', 'Nightingale', 'Thistlewood'];
const STREETS = ['Mill Lane', 'Church Road', 'Station Road', 'Victoria Street', 'Park Avenue', 'Orchard Close', 'Meadow View', 'Chapel Street', 'Kingsway', 'The Crescent', 'Willow Drive', 'Beech Grove', 'Queens Road', 'High Street', 'Elm Terrace'];
export const FAKE_TOWNS = ['Ashvale', 'Northmere', 'Kettleby Cross', 'Wrenford', 'Lower Dunsby', 'Harrowgate Fen', 'Brackenmoor', 'Easterholt', 'Fernleigh', 'Calderbridge', 'Whitlow St Mary', 'Oakhurst Magna'];
const TITLES = ['Dr', 'Dr', 'Dr', 'Prof'];

export interface PersonName {
  family: string;
  given: string;
  /** DICOM PN: FAMILY^Given^^Prefix */
  dicom: string;
}

export function personName(rng: Rng, sex: 'M' | 'F' | 'U', prefix?: string): PersonName {
  const given = rng.pick(sex === 'F' ? GIVEN_F : sex === 'M' ? GIVEN_M : rng.chance(0.5) ? GIVEN_F : GIVEN_M);
  const family = rng.pick(FAMILY);
  return { family, given, dicom: `${family.toUpperCase()}^${given}${prefix ? `^^${prefix}` : ''}` };
}

export function clinicianName(rng: Rng): PersonName {
  return personName(rng, rng.chance(0.5) ? 'F' : 'M', rng.pick(TITLES));
}

/** NHS number modulus-11 check digit for the first nine digits, or null if invalid (10). */
export function nhsCheckDigit(nine: string): number | null {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(nine[i]) * (10 - i);
  const c = 11 - (sum % 11);
  if (c === 11) return 0;
  if (c === 10) return null;
  return c;
}

export function isValidNhsNumber(n: string): boolean {
  const d = n.replace(/\s/g, '');
  if (!/^\d{10}$/.test(d)) return false;
  return nhsCheckDigit(d.slice(0, 9)) === Number(d[9]);
}

/** A 999-range (test) NHS number with a valid check digit. */
export function nhsNumber(rng: Rng): string {
  for (;;) {
    const nine = '999' + String(rng.int(0, 999999)).padStart(6, '0');
    const c = nhsCheckDigit(nine);
    if (c !== null) return nine + String(c);
  }
}

export interface Address {
  lines: string[];
  town: string;
  postcode: string;
  /** DICOM-friendly single string. */
  text: string;
}

export function address(rng: Rng, town: string): Address {
  const line1 = `${rng.int(1, 180)} ${rng.pick(STREETS)}`;
  const postcode = `ZZ99 ${rng.int(1, 9)}${String.fromCharCode(65 + rng.int(0, 25))}${String.fromCharCode(65 + rng.int(0, 25))}`;
  return { lines: [line1], town, postcode, text: `${line1}, ${town}, ${postcode}` };
}

export function phone(rng: Rng): string {
  // Ofcom reserves 07700 900000-900999 for drama: clearly fake.
  return `07700 900${String(rng.int(0, 999)).padStart(3, '0')}`;
}
