import type { AuditLog } from '@imago/audit';
import type { Config, Logger } from '@imago/core';
import type { ImagoDb } from '@imago/db';
import type { App } from '@imago/http';
import { startDimseServer, type DimseServer } from './dimse.js';
import { SiteNode } from './node.js';
import { registerSiteRoutes } from './routes.js';
import { registerCaseRoutes } from './cases-routes.js';
import type { JobQueue } from './queue.js';

export interface SitePart {
  node: SiteNode;
  dimse: DimseServer | null;
  close(): Promise<void>;
}

/**
 * Start the site part: routes on `app` (call before `listen`), the DIMSE
 * server and the pipeline workers.
 */
export async function startSite(deps: { config: Config; logger: Logger; db: ImagoDb; audit: AuditLog; app?: App; queue?: JobQueue; workers?: boolean }): Promise<SitePart> {
  const node = await SiteNode.open(deps);
  if (deps.app) await registerSiteRoutes(deps.app, node);
  if (deps.app) await registerCaseRoutes(deps.app, node);
  // Workers (and with them the start-up reconciliation of the incoming folder) before the DIMSE server,
  // so reconciliation never sees a file that is still being received.
  if (deps.workers !== false) await node.startWorkers();
  const dimse = deps.config.site.dimse ? await startDimseServer(node) : null;
  deps.logger.info({ site: deps.config.site.code, aeTitle: deps.config.site.aeTitle, dimsePort: dimse?.port ?? null, hub: deps.config.site.hubUrl ?? null }, 'site node started');
  return {
    node,
    dimse,
    async close() {
      await dimse?.close();
      await node.stop();
    },
  };
}
