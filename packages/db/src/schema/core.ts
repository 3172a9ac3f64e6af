/** Tables owned by the foundation: identity, audit and jobs. */
export interface OrganisationsTable {
  id: string;
  code: string;
  name: string;
  kind: string; // hospital | hub | company | university | public_body
  created_at: string;
}

export interface UsersTable {
  id: string;
  username: string;
  display_name: string;
  email: string | null;
  password_hash: string | null;
  oidc_subject: string | null;
  disabled: number; // 0 | 1
  failed_logins: number;
  locked_until: string | null;
  created_at: string;
}

export interface RoleGrantsTable {
  user_id: string;
  role: string;
  org_id: string | null;
}

export interface SessionsTable {
  id_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
  ip: string | null;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  token_hash: string;
  role: string;
  org_id: string | null;
  created_by: string | null;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface AuditEventsTable {
  seq: number;
  id: string;
  at: string;
  actor_id: string;
  actor_name: string;
  actor_role: string | null;
  action: string;
  code_system: string;
  code: string;
  code_display: string;
  resource_type: string;
  resource_id: string | null;
  outcome: string; // success | failure | denied
  source_ip: string | null;
  detail: string | null; // JSON, never PHI
  prev_hash: string;
  hash: string;
}

export interface JobsTable {
  id: string;
  name: string;
  data: string; // JSON; ids only
  state: string; // created | active | completed | failed | dead
  singleton_key: string | null;
  priority: number;
  retry_count: number;
  retry_limit: number;
  retry_delay_ms: number;
  retry_max_delay_ms: number;
  start_after: string;
  started_at: string | null;
  expire_seconds: number;
  completed_at: string | null;
  created_at: string;
  last_error: string | null;
  failure_class: string | null;
}

export interface CoreTables {
  organisations: OrganisationsTable;
  users: UsersTable;
  role_grants: RoleGrantsTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  audit_events: AuditEventsTable;
  jobs: JobsTable;
}
