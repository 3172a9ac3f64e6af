/** Tables owned by the site node (packages/site). */

/** One received DICOM instance and where it is in the pipeline. */
export interface SiteInstancesTable {
  id: string;
  /** received | checked | outbox | uploaded | quarantine | dropped-opt-out | parked | failed */
  state: string;
  /** dimse | stow | import */
  source: string;
  calling_ae: string | null;
  /** Relative path under DATA/site of the identifiable original; null once deleted. */
  incoming_path: string | null;
  received_at: string;
  size: number;
  /** Pseudonym (never the original ID). */
  pseudonym: string | null;
  /** Relative path of the de-identified copy. */
  outbox_path: string | null;
  sha256: string | null;
  out_size: number | null;
  /** New (de-identified) SOP Instance UID. */
  sop_uid: string | null;
  /** New (de-identified) Study Instance UID. */
  study_uid?: string | null;
  modality: string | null;
  reason: string | null;
  attempts: number;
  deidentified_at: string | null;
  uploaded_at: string | null;
  /** When the original may be deleted (keepOriginalsDays). */
  delete_original_after: string | null;
  updated_at: string;
}

/** The national data opt-out list, as keyed hashes of issuer+ID only. */
export interface SiteOptoutsTable {
  hash: string;
  source: string;
  created_at: string;
}

/** Other identifiers of a patient seen in images, linked to the images' pseudonym. Stays on the site. */
export interface SitePatientAliasesTable {
  patient_id: string;
  issuer: string;
  pseudonym: string;
  created_at: string;
}

/** Pseudonym map: stays on the site; read only through an audited function. */
export interface SitePseudonymsTable {
  pseudonym: string;
  patient_id: string;
  issuer: string;
  created_at: string;
}

export interface SiteClinicalTable {
  id: string;
  pseudonym: string;
  kind: string; // data | status
  template_version: string;
  /** JSON of the record without patient identifiers. */
  record: string;
  /** sha256 of the canonical JSON of `record`. */
  sha256: string;
  /** draft | ready | uploaded | parked | dropped-opt-out */
  state: string;
  reason: string | null;
  created_at: string;
  updated_at: string;
  uploaded_at: string | null;
}

export interface SitePurgesTable {
  id: string;
  pseudonym: string;
  reason: string | null;
  /** pending | purged | parked */
  state: string;
  evidence_id: string | null;
  last_error: string | null;
  created_at: string;
  done_at: string | null;
}

export interface SiteCountersTable {
  name: string;
  value: number;
}

export interface SiteTables {
  site_instances: SiteInstancesTable;
  site_optouts: SiteOptoutsTable;
  site_pseudonyms: SitePseudonymsTable;
  site_patient_aliases: SitePatientAliasesTable;
  site_clinical: SiteClinicalTable;
  site_purges: SitePurgesTable;
  site_counters: SiteCountersTable;
}
