/**
 * Audit event codes. Each Imago action maps to a DICOM audit event ID (PS3.15
 * Annex A.5, code system DCM) and a FHIR AuditEvent action (C/R/U/D/E).
 */
export interface AuditCode {
  system: 'DCM';
  code: string;
  display: string;
  /** FHIR AuditEvent.action */
  fhirAction: 'C' | 'R' | 'U' | 'D' | 'E';
}

const dcm = (code: string, display: string, fhirAction: AuditCode['fhirAction']): AuditCode => ({ system: 'DCM', code, display, fhirAction });

export const AUDIT_CODES = {
  applicationActivity: dcm('110100', 'Application Activity', 'E'),
  auditLogUsed: dcm('110101', 'Audit Log Used', 'R'),
  beginTransferring: dcm('110102', 'Begin Transferring DICOM Instances', 'E'),
  instancesAccessed: dcm('110103', 'DICOM Instances Accessed', 'R'),
  instancesTransferred: dcm('110104', 'DICOM Instances Transferred', 'C'),
  studyDeleted: dcm('110105', 'DICOM Study Deleted', 'D'),
  export: dcm('110106', 'Export', 'R'),
  import: dcm('110107', 'Import', 'C'),
  networkEntry: dcm('110108', 'Network Entry', 'E'),
  orderRecord: dcm('110109', 'Order Record', 'U'),
  patientRecord: dcm('110110', 'Patient Record', 'U'),
  procedureRecord: dcm('110111', 'Procedure Record', 'U'),
  query: dcm('110112', 'Query', 'E'),
  securityAlert: dcm('110113', 'Security Alert', 'E'),
  userAuthentication: dcm('110114', 'User Authentication', 'E'),
} as const satisfies Record<string, AuditCode>;

export type AuditCodeName = keyof typeof AUDIT_CODES;
