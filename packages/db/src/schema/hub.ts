/** Tables of the hub warehouse (packages/hub). */
export interface HubSitesTable {
  code: string;
  name: string;
  region: string;
  org_id: string;
  /** 1 when the site shares its data with other parties: never contributes to validation. */
  shares_data: number;
  /** 'training' | 'validation' | 'percent' */
  split_mode: string;
  /** Share of patients assigned to training when split_mode = 'percent'. */
  training_percent: number;
  created_at: string;
  updated_at: string;
}

export interface HubPatientsTable {
  pseudonym: string;
  /** The site that first sent the patient; the group was decided by its rule. */
  site: string;
  /** 'training' | 'validation' */
  grp: string;
  assigned_at: string;
  /** The rule in force when the group was decided, e.g. `percent:70` or `training`. */
  assigned_rule: string;
  sex: string | null;
  age_band: string | null;
  ethnicity: string | null;
  updated_at: string;
}

export interface HubSplitConflictsTable {
  id: string;
  pseudonym: string;
  site: string;
  assigned_grp: string;
  claimed_grp: string;
  reason: string;
  detected_at: string;
}

export interface HubStudiesTable {
  study_key: string;
  study_uid: string;
  pseudonym: string;
  site: string;
  study_date: string | null;
  study_time: string | null;
  accession_number: string | null;
  study_id: string | null;
  study_description: string | null;
  referring_physician: string | null;
  patient_sex: string | null;
  patient_age: string | null;
  modalities: string;
  num_series: number;
  num_instances: number;
  /** DICOM JSON of the study-level attributes (patient + study modules). */
  attrs: string;
  created_at: string;
  updated_at: string;
}

export interface HubSeriesTable {
  series_key: string;
  study_key: string;
  series_uid: string;
  modality: string | null;
  body_part: string | null;
  series_number: number | null;
  series_description: string | null;
  series_date: string | null;
  manufacturer: string | null;
  model: string | null;
  num_instances: number;
  attrs: string;
  created_at: string;
}

export interface HubInstancesTable {
  instance_key: string;
  series_key: string;
  study_key: string;
  sop_uid: string;
  sop_class_uid: string;
  instance_number: number | null;
  sha256: string;
  blob_key: string;
  size: number;
  site: string;
  pseudonym: string;
  transfer_syntax: string;
  modality: string | null;
  body_part: string | null;
  study_date: string | null;
  content_date: string | null;
  manufacturer: string | null;
  model: string | null;
  patient_sex: string | null;
  patient_age: string | null;
  rows: number | null;
  columns: number | null;
  number_of_frames: number | null;
  /** DICOM JSON (PS3.18 F.2) of the header, bulk data left out. */
  metadata: string;
  received_at: string;
}

export interface HubClinicalRecordsTable {
  id: string;
  site: string;
  source_id: string;
  sha256: string;
  pseudonym: string;
  /** 'data' | 'status' */
  kind: string;
  template_version: string;
  received_at: string;
  stored_at: string;
  record: string;
  /** Provenance, e.g. `site:DEMO1`. */
  source: string;
}

export interface HubLinkedDataTable {
  id: string;
  pseudonym: string;
  source: string;
  field: string;
  value: string;
  /** JSON: file name, file sha256, importer, time. */
  provenance: string;
  imported_at: string;
}

export interface HubThumbnailsTable {
  instance_key: string;
  pseudonym: string;
  blob_key: string;
  created_at: string;
}

export interface HubPurgesTable {
  id: string;
  /** HMAC of the pseudonym under the hub secret: lets the hub refuse re-sends, never reveals the identity. */
  pseudonym_hmac: string;
  site: string | null;
  requested_by: string;
  request_id: string | null;
  reason: string | null;
  counts: string;
  instances_digest: string;
  audit_event_id: string;
  purged_at: string;
}

export interface HubReleasesTable {
  id: string;
  version: number;
  identifier: string;
  title: string;
  description: string;
  content_hash: string;
  training_hash: string;
  validation_hash: string;
  counts: string;
  datasheet_json: string;
  datasheet_md: string;
  created_by: string;
  created_at: string;
}

export interface HubReleaseItemsTable {
  release_id: string;
  /** 'instance' | 'clinical' */
  kind: string;
  grp: string;
  site: string;
  modality: string | null;
  pseudonym: string;
  ref: string;
  sha256: string;
  size: number;
  /** sha256 of the item's canonical manifest line: kept after a purge so the content hash stays verifiable. */
  leaf_hash: string;
}

export interface HubReleaseWithheldTable {
  release_id: string;
  purge_id: string;
  grp: string;
  kind: string;
  leaf_hash: string;
}

export interface HubTables {
  hub_sites: HubSitesTable;
  hub_patients: HubPatientsTable;
  hub_split_conflicts: HubSplitConflictsTable;
  hub_studies: HubStudiesTable;
  hub_series: HubSeriesTable;
  hub_instances: HubInstancesTable;
  hub_clinical_records: HubClinicalRecordsTable;
  hub_linked_data: HubLinkedDataTable;
  hub_thumbnails: HubThumbnailsTable;
  hub_purges: HubPurgesTable;
  hub_releases: HubReleasesTable;
  hub_release_items: HubReleaseItemsTable;
  hub_release_withheld: HubReleaseWithheldTable;
}
