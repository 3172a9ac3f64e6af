export * from './generate.js';
export * from './clinical.js';
export { makeSites, ETHNIC_CATEGORIES, type SiteProfile, type EthnicCode, type CsvTemplate } from './sites.js';
export { isValidNhsNumber, nhsCheckDigit } from './phi.js';
export { encodeInstance } from './render.js';
export type { InstancePlan } from './iods.js';
export type { PatientPlan, StudyPlan } from './model.js';
export { sendDataset, type SendOptions, type SendResult } from './send.js';
