import { useEffect, useId, useRef, useState, type ReactNode, type InputHTMLAttributes, type SelectHTMLAttributes } from 'react';
import { errorText } from '../api';
import { isMissingEndpoint } from '../hooks';

/**
 * The page heading takes focus after an in-app navigation so screen-reader
 * users hear where they are. On the first page of a load, focus stays at the
 * top of the document so that the skip link is the first Tab stop.
 */
let firstPage = true;
export function Page({ title, intro, actions, children }: { title: string; intro?: ReactNode; actions?: ReactNode; children: ReactNode }) {
  const h = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Imago`;
    if (firstPage) firstPage = false;
    else h.current?.focus();
  }, [title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-head">
        <div>
          <h1 id="page-title" tabIndex={-1} ref={h}>{title}</h1>
          {intro ? <p className="intro">{intro}</p> : null}
        </div>
        {actions ? <div className="page-actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

export function Panel({ title, children, actions, id }: { title: string; children: ReactNode; actions?: ReactNode; id?: string }) {
  const hid = useId();
  return (
    <section className="panel" aria-labelledby={hid} id={id}>
      <div className="panel-head">
        <h2 id={hid}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** An error from the API, in words; a missing endpoint says so plainly. */
export function ErrorNote({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  if (isMissingEndpoint(error)) {
    return (
      <div className="note note-wait" role="status">
        {what ? `${what}: ` : ''}this server does not provide this part of the API yet.
      </div>
    );
  }
  return <div className="note note-error" role="alert">{errorText(error)}</div>;
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return <p className="muted" role="status" aria-live="polite">{label}</p>;
}

interface FieldProps {
  label: string;
  name: string;
  error?: string | undefined;
  hint?: ReactNode;
  unit?: string;
  children?: ReactNode;
}

function describedBy(id: string, hint: unknown, error: unknown): string | undefined {
  const parts = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean);
  return parts.length ? parts.join(' ') : undefined;
}

/** A labelled input with its hint (units, allowed range) and its field-level error. */
export function TextField(props: FieldProps & Omit<InputHTMLAttributes<HTMLInputElement>, 'name'>) {
  const { label, name, error, hint, unit, ...input } = props;
  const id = `f-${name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}{unit ? <span className="unit"> ({unit})</span> : null}</label>
      {hint ? <p className="hint" id={`${id}-hint`}>{hint}</p> : null}
      {error ? <p className="field-error" id={`${id}-error`}><span className="sr-only">Error: </span>{error}</p> : null}
      <input id={id} name={name} aria-invalid={error ? true : undefined} aria-describedby={describedBy(id, hint, error)} {...input} />
    </div>
  );
}

export function SelectField(props: FieldProps & Omit<SelectHTMLAttributes<HTMLSelectElement>, 'name'> & { options: ReadonlyArray<{ value: string; label: string }> }) {
  const { label, name, error, hint, options, ...sel } = props;
  const id = `f-${name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {hint ? <p className="hint" id={`${id}-hint`}>{hint}</p> : null}
      {error ? <p className="field-error" id={`${id}-error`}><span className="sr-only">Error: </span>{error}</p> : null}
      <select id={id} name={name} aria-invalid={error ? true : undefined} aria-describedby={describedBy(id, hint, error)} {...sel}>
        {options.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
      </select>
    </div>
  );
}

/** A list of the form's errors at the top, each linking to its field. */
export function ErrorSummary({ errors, labels, title = 'There is a problem' }: { errors: Record<string, string>; labels?: Record<string, string>; title?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const keys = Object.keys(errors);
  useEffect(() => {
    if (keys.length) ref.current?.focus();
  }, [keys.join('|')]);
  if (!keys.length) return null;
  return (
    <div className="error-summary" role="alert" tabIndex={-1} ref={ref} aria-labelledby="error-summary-title">
      <h2 id="error-summary-title">{title}</h2>
      <ul>
        {keys.map((k) => (
          <li key={k}>
            <a href={`#f-${k.replace(/[^a-zA-Z0-9_-]/g, '_')}`} onClick={(e) => {
              e.preventDefault();
              document.getElementById(`f-${k.replace(/[^a-zA-Z0-9_-]/g, '_')}`)?.focus();
            }}>{labels?.[k] ? `${labels[k]}: ` : k && !labels ? `${k}: ` : ''}{errors[k]}</a>
          </li>
        ))}
      </ul>
    </div>
  );
}

/**
 * Ask before a consequential action. A native modal dialog: focus moves into it,
 * Escape cancels, and focus returns to the button that opened it.
 */
export function ConfirmButton({ label, title, body, confirmLabel, onConfirm, danger, disabled, className }: {
  label: string; title: string; body: ReactNode; confirmLabel: string; onConfirm: () => Promise<void> | void; danger?: boolean; disabled?: boolean; className?: string;
}) {
  const dlg = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const tid = useId();
  const open = () => {
    setErr(null);
    dlg.current?.showModal();
  };
  const confirm = async () => {
    setBusy(true);
    setErr(null);
    try {
      await onConfirm();
      dlg.current?.close();
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={className ?? (danger ? 'btn btn-danger' : 'btn')} onClick={open} disabled={disabled}>{label}</button>
      <dialog ref={dlg} aria-labelledby={tid} className="dialog">
        <h2 id={tid}>{title}</h2>
        <div className="dialog-body">{body}</div>
        <ErrorNote error={err} />
        <div className="dialog-actions">
          <button type="button" className="btn btn-secondary" onClick={() => dlg.current?.close()} disabled={busy}>Cancel</button>
          <button type="button" className={danger ? 'btn btn-danger' : 'btn'} onClick={confirm} disabled={busy}>{busy ? 'Working…' : confirmLabel}</button>
        </div>
      </dialog>
    </>
  );
}

/** Announces outcomes politely to assistive technology and shows them. */
export function Notice({ text, kind = 'ok' }: { text: string | null; kind?: 'ok' | 'error' }) {
  return <div role="status" aria-live="polite" className={text ? `note note-${kind}` : 'sr-only'}>{text ?? ''}</div>;
}

export function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: string }) {
  return (
    <div className="stat">
      <div className="stat-value">{value}</div>
      <div className="stat-label">{label}</div>
      {hint ? <div className="stat-hint">{hint}</div> : null}
    </div>
  );
}

export function fmtDate(s: string | null | undefined): string {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtNum(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : n.toLocaleString('en-GB');
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}
