import { useState } from 'react';
import { api } from '../../api';
import { useApi } from '../../hooks';
import { ConfirmButton, ErrorNote, Loading, Notice, Page, Panel, fmtBytes, fmtDate } from '../../components/ui';
import { SeriesViewer } from '../../components/viewer';
import { list } from '../../shapes';

interface QItem { id: string; reason: string | null; modality: string | null; receivedAt: string; source: string; callingAe: string | null; size: number }

/** Where the site API serves a quarantined instance: its thumbnail and its DICOM. */
export const quarantineUrls = (id: string) => ({
  thumbnail: `/api/site/v1/quarantine/${encodeURIComponent(id)}/thumbnail`,
  instance: `/api/site/v1/quarantine/${encodeURIComponent(id)}/instance`,
  decide: (d: 'release' | 'reject') => `/api/site/v1/quarantine/${encodeURIComponent(id)}/${d}`,
});

export function Quarantine(_props: { params: Record<string, string> }) {
  const q = useApi<unknown>('/api/site/v1/quarantine');
  const items = list<QItem>(q.data, 'items', 'instances');
  const [msg, setMsg] = useState<string | null>(null);
  const [viewing, setViewing] = useState<string | null>(null);
  const [broken, setBroken] = useState<Set<string>>(new Set());

  const decide = async (it: QItem, decision: 'release' | 'reject') => {
    await api.post(quarantineUrls(it.id).decide(decision), {});
    setMsg(decision === 'release' ? `Released ${it.id.slice(0, 12)}: it will be de-identified and queued for upload.` : `Deleted ${it.id.slice(0, 12)}.`);
    if (viewing === it.id) setViewing(null);
    q.reload();
  };

  return (
    <Page title="Quarantine review" intro="Instances held back because they may carry burned-in identifying text (BurnedInAnnotation = YES, or ultrasound, secondary capture and other types without an explicit allow). Look at each one and release it or delete it. Both decisions are recorded in the audit log.">
      <Notice text={msg} />
      <ErrorNote error={q.error} what="Quarantine" />
      {q.loading && !q.data ? <Loading /> : null}
      {q.data ? (
        items.length ? (
          <div className="thumbs" data-testid="quarantine-list">
            {items.map((it) => {
              const u = quarantineUrls(it.id);
              return (
                <article className="thumb-card" key={it.id} data-testid="quarantine-item" aria-label={`Quarantined instance ${it.id.slice(0, 12)}`}>
                  {broken.has(it.id)
                    ? <div className="note note-wait">No preview for this instance.</div>
                    : <img src={u.thumbnail} alt={`Preview of quarantined ${it.modality ?? ''} instance ${it.id.slice(0, 12)}`} onError={() => setBroken(new Set([...broken, it.id]))} />}
                  <strong>{it.reason ?? 'Held for review'}</strong>
                  <span className="muted">{it.modality ?? 'Unknown modality'} · {fmtBytes(it.size)} · {it.source}{it.callingAe ? ` from ${it.callingAe}` : ''}</span>
                  <span className="muted">Received {fmtDate(it.receivedAt)}</span>
                  <div className="row-actions">
                    <button type="button" className="btn btn-secondary btn-small" onClick={() => setViewing(viewing === it.id ? null : it.id)} aria-expanded={viewing === it.id}>{viewing === it.id ? 'Close viewer' : 'View'}</button>
                    <ConfirmButton label="Release" className="btn btn-small" title="Release this instance?"
                      body={<p>It will be de-identified by the site's profile and queued for upload to the hub. Only release it if you have checked that no identifying text is burned into the image. Reason held: <strong>{it.reason ?? '—'}</strong>.</p>}
                      confirmLabel="Release instance" onConfirm={() => decide(it, 'release')} />
                    <ConfirmButton label="Delete" danger className="btn btn-danger btn-small" title="Delete this instance?"
                      body={<p>The instance is rejected and its file is deleted from the site. It will never be sent to the hub. This cannot be undone.</p>}
                      confirmLabel="Delete instance" onConfirm={() => decide(it, 'reject')} />
                  </div>
                </article>
              );
            })}
          </div>
        ) : <Panel title="Nothing in quarantine"><p>No instances are waiting for review.</p></Panel>
      ) : null}
      {viewing ? (
        <Panel title={`Instance ${viewing.slice(0, 12)}`}>
          <SeriesViewer title={`Quarantined instance ${viewing.slice(0, 12)}`} instances={[{ url: quarantineUrls(viewing).instance, label: viewing.slice(0, 12) }]} />
        </Panel>
      ) : null}
    </Page>
  );
}
