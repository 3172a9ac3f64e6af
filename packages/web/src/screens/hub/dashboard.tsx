import { useMemo, useState, type ReactNode } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useApi } from '../../hooks';
import { ErrorNote, Loading, Page, Panel, SelectField, Stat, fmtBytes, fmtNum } from '../../components/ui';

export interface HubStats {
  totals: { sites: number; patients: number; studies: number; instances: number; bytes: number; clinicalRecords: number; splitConflicts: number };
  overTime: Array<{ period: string; site: string; modality: string; group: string; instances: number }>;
  patientsOverTime: Array<{ period: string; site: string; group: string; patients: number }>;
  patientsOverTimeByModality: Array<{ period: string; site: string; modality: string; group: string; patients: number }>;
  completeness: Array<{ site: string; patients: number; fields: Record<string, number> }>;
  distributions: Record<string, Record<string, Array<{ category: string; count: number; share: number; reference: number | null }>>>;
  splitBalance: Array<{ site: string; rule: string; training: number; validation: number; trainingShare: number | null; configuredTrainingPercent: number }>;
}

const PALETTE = ['#0b5cad', '#d9480f', '#2b8a3e', '#862e9c', '#c92a2a', '#1098ad', '#5c940d', '#e67700', '#364fc7', '#a61e4d'];
const DIM_LABELS: Record<string, string> = { sex: 'Sex', ageBand: 'Age band', ethnicity: 'Ethnicity' };

/** A chart with a caption and the same numbers as a table for screen-reader and keyboard users. */
function Figure({ caption, children, table }: { caption: string; children: ReactNode; table: ReactNode }) {
  return (
    <figure style={{ margin: 0 }}>
      <figcaption className="muted">{caption}</figcaption>
      <div className="chart" aria-hidden="true">{children}</div>
      <details><summary>Show the numbers</summary>{table}</details>
    </figure>
  );
}

type Series = { data: Array<Record<string, number | string>>; keys: string[] };
type Row = { period: string; site: string; group: string; modality?: string };

function pivot<R extends Row>(rows: R[], by: 'site' | 'modality' | 'group', value: (r: R) => number, cumulative: boolean): Series {
  const keyOf = (r: R) => r[by] || 'unknown';
  const keys = [...new Set(rows.map(keyOf))].sort();
  const periods = [...new Set(rows.map((r) => r.period))].sort();
  const data = periods.map((p) => {
    const o: Record<string, number | string> = { period: p };
    for (const k of keys) o[k] = 0;
    for (const r of rows) if (r.period === p) o[keyOf(r)] = (o[keyOf(r)] as number) + value(r);
    return o;
  });
  if (cumulative) {
    const acc: Record<string, number> = {};
    for (const row of data) for (const k of keys) row[k] = acc[k] = (acc[k] ?? 0) + (row[k] as number);
  }
  return { data, keys };
}

/** Counts per period as lines (or stacked bars when there are few periods), with the numbers as a table (a Total column per row). */
function TimeFigure({ series, caption, testId, stack }: { series: Series; caption: string; testId: string; stack: boolean }) {
  const total = (r: Record<string, number | string>) => series.keys.reduce((a, k) => a + (r[k] as number), 0);
  return (
    <Figure caption={caption} table={
      <table className="table" data-testid={testId}><thead><tr><th scope="col">Period</th>{series.keys.map((k) => <th scope="col" className="num" key={k}>{k}</th>)}{stack ? <th scope="col" className="num">Total</th> : null}</tr></thead>
        <tbody>{series.data.map((r) => <tr key={String(r.period)}><th scope="row">{r.period}</th>{series.keys.map((k) => <td className="num" key={k}>{fmtNum(r[k] as number)}</td>)}{stack ? <td className="num" data-col="total">{fmtNum(total(r))}</td> : null}</tr>)}</tbody></table>}>
      <ResponsiveContainer width="100%" height="100%">
        {series.data.length > 3 ? (
          <LineChart accessibilityLayer={false} data={series.data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="period" />
            <YAxis allowDecimals={false} />
            <Tooltip />
            <Legend />
            {series.keys.map((k, i) => <Line key={k} type="monotone" dataKey={k} stroke={PALETTE[i % PALETTE.length]} strokeWidth={2} dot={series.data.length < 40} isAnimationActive={false} />)}
          </LineChart>
        ) : (
          <BarChart accessibilityLayer={false} data={series.data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="period" />
            <YAxis allowDecimals={false} />
            <Tooltip />
            <Legend />
            {series.keys.map((k, i) => <Bar key={k} dataKey={k} stackId={stack ? 't' : undefined} fill={PALETTE[i % PALETTE.length]} maxBarSize={120} isAnimationActive={false} />)}
          </BarChart>
        )}
      </ResponsiveContainer>
    </Figure>
  );
}

function heat(v: number): string {
  // 0 → pale red, 1 → green; text stays dark for contrast.
  const h = Math.round(v * 120);
  return `hsl(${h}, 70%, ${88 - v * 18}%)`;
}

export function HubDashboard(_props: { params: Record<string, string> }) {
  const [bucket, setBucket] = useState<'day' | 'month'>('day');
  const [by, setBy] = useState<'site' | 'modality' | 'group'>('site');
  const [cumulative, setCumulative] = useState(true);
  const st = useApi<HubStats>('/api/hub/v1/stats', { query: { bucket } });
  const s = st.data;

  const time = useMemo(() => (s ? pivot(s.overTime, by, (r) => r.instances, cumulative) : null), [s, by, cumulative]);
  // Per modality a patient counts once for each modality they have, so those bars are not stacked into a total.
  const patients = useMemo(() => (s ? (by === 'modality'
    ? pivot(s.patientsOverTimeByModality ?? [], by, (r) => r.patients, cumulative)
    : pivot(s.patientsOverTime ?? [], by, (r) => r.patients, cumulative)) : null), [s, by, cumulative]);

  const fields = useMemo(() => (s ? [...new Set(s.completeness.flatMap((c) => Object.keys(c.fields)))].sort() : []), [s]);

  return (
    <Page title="Ingest dashboard" intro="What the warehouse holds, how complete the clinical data is, how patients are split, and how each group compares with the reference population. Numbers come straight from the hub.">
      <ErrorNote error={st.error} what="Hub statistics" />
      {!s && st.loading ? <Loading /> : null}
      {s ? (
        <>
          <div className="stats" data-testid="hub-totals">
            <Stat label="Sites" value={<span data-total="sites">{fmtNum(s.totals.sites)}</span>} />
            <Stat label="Patients" value={<span data-total="patients">{fmtNum(s.totals.patients)}</span>} />
            <Stat label="Studies" value={<span data-total="studies">{fmtNum(s.totals.studies)}</span>} />
            <Stat label="Instances" value={<span data-total="instances">{fmtNum(s.totals.instances)}</span>} hint={fmtBytes(s.totals.bytes)} />
            <Stat label="Clinical records" value={<span data-total="clinicalRecords">{fmtNum(s.totals.clinicalRecords)}</span>} />
            <Stat label="Split conflicts" value={<span data-total="splitConflicts">{fmtNum(s.totals.splitConflicts)}</span>} hint={s.totals.splitConflicts ? 'Patients seen in both groups: investigate' : 'None'} />
          </div>

          <div className="filters">
            <SelectField label="Break down by" name="by" value={by} onChange={(e) => setBy(e.target.value as typeof by)} options={[{ value: 'site', label: 'Site' }, { value: 'modality', label: 'Modality' }, { value: 'group', label: 'Training / validation' }]} />
            <SelectField label="Period" name="bucket" value={bucket} onChange={(e) => setBucket(e.target.value as typeof bucket)} options={[{ value: 'day', label: 'Day' }, { value: 'month', label: 'Month' }]} />
            <div className="checkbox field"><input id="f-cumulative" type="checkbox" checked={cumulative} onChange={(e) => setCumulative(e.target.checked)} /><label htmlFor="f-cumulative">Cumulative</label></div>
          </div>
          <div className="grid-2">
            <Panel title="Instances over time">
              <div data-testid="overtime-instances">
                {time && time.data.length
                  ? <TimeFigure series={time} testId="overtime-table" stack caption={`${cumulative ? 'Cumulative instances' : 'Instances received'} per ${bucket}, by ${by}`} />
                  : <p>No instances yet.</p>}
              </div>
            </Panel>
            <Panel title="Patients over time">
              <div data-testid="overtime-patients">
                {patients && patients.data.length
                  ? <TimeFigure series={patients} testId="patients-overtime-table" stack={by !== 'modality'} caption={`${cumulative ? 'Cumulative new patients' : 'New patients'} per ${bucket} (by first arrival), by ${by}${by === 'modality' ? '; a patient counts once for each modality they have' : ''}`} />
                  : <p>No patients yet.</p>}
              </div>
            </Panel>
          </div>

          <div className="grid-2">
            <Panel title="Split balance per site">
              {s.splitBalance.length ? (
                <Figure caption="Patients in training and validation, per site" table={null}>
                  <ResponsiveContainer width="100%" height="100%">
                    <BarChart accessibilityLayer={false} data={s.splitBalance} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
                      <CartesianGrid strokeDasharray="3 3" />
                      <XAxis dataKey="site" />
                      <YAxis allowDecimals={false} />
                      <Tooltip />
                      <Legend />
                      <Bar dataKey="training" name="Training" stackId="g" fill="#0b5cad" isAnimationActive={false} />
                      <Bar dataKey="validation" name="Validation" stackId="g" fill="#d9480f" isAnimationActive={false} />
                    </BarChart>
                  </ResponsiveContainer>
                </Figure>
              ) : <p>No sites yet.</p>}
              <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page"><table className="table" data-testid="split-table">
                <caption className="sr-only">Split balance per site</caption>
                <thead><tr><th scope="col">Site</th><th scope="col">Rule</th><th scope="col" className="num">Training</th><th scope="col" className="num">Validation</th><th scope="col" className="num">Training share</th><th scope="col" className="num">Configured</th></tr></thead>
                <tbody>{s.splitBalance.map((b) => (
                  <tr key={b.site} data-site={b.site}><th scope="row">{b.site}</th><td>{b.rule}</td><td className="num" data-col="training">{fmtNum(b.training)}</td><td className="num" data-col="validation">{fmtNum(b.validation)}</td>
                    <td className="num">{b.trainingShare === null ? '—' : `${Math.round(b.trainingShare * 100)}%`}</td><td className="num">{b.configuredTrainingPercent}%</td></tr>
                ))}</tbody>
              </table></div>
            </Panel>
            <Panel title="Clinical-field completeness per site">
              {s.completeness.length ? (
                <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
                  <table className="table heatmap" data-testid="completeness-heatmap">
                    <caption className="muted" style={{ captionSide: 'top', textAlign: 'left' }}>Share of patients with each field filled in (current record per patient)</caption>
                    <thead><tr><th scope="col">Field</th>{s.completeness.map((c) => <th scope="col" className="num" key={c.site}>{c.site}<div className="muted">{c.patients} pts</div></th>)}</tr></thead>
                    <tbody>{fields.map((f) => (
                      <tr key={f}><th scope="row"><code>{f}</code></th>{s.completeness.map((c) => {
                        const v = c.fields[f];
                        return <td key={c.site} className="cell" style={v === undefined ? undefined : { background: heat(v) }}>{v === undefined ? '—' : `${Math.round(v * 100)}%`}</td>;
                      })}</tr>
                    ))}</tbody>
                  </table>
                </div>
              ) : <p>No clinical records yet.</p>}
            </Panel>
          </div>

          <Panel title="Demographics per group against the reference population">
            <div className="grid-2">
              {Object.entries(s.distributions).map(([dim, groups]) => {
                const cats = [...new Set(Object.values(groups).flatMap((g) => g.map((x) => x.category)))];
                const data = cats.map((c) => ({
                  category: c,
                  training: Math.round((groups.training?.find((x) => x.category === c)?.share ?? 0) * 1000) / 10,
                  validation: Math.round((groups.validation?.find((x) => x.category === c)?.share ?? 0) * 1000) / 10,
                  reference: (() => {
                    const r = (groups.training ?? groups.validation ?? []).find((x) => x.category === c)?.reference;
                    return r === null || r === undefined ? null : Math.round(r * 1000) / 10;
                  })(),
                }));
                return (
                  <Figure key={dim} caption={`${DIM_LABELS[dim] ?? dim}: share of patients (%) in each group and in the reference population`} table={
                    <table className="table" data-testid={`dist-${dim}`}><thead><tr><th scope="col">{DIM_LABELS[dim] ?? dim}</th><th scope="col" className="num">Training %</th><th scope="col" className="num">Validation %</th><th scope="col" className="num">Reference %</th></tr></thead>
                      <tbody>{data.map((d) => <tr key={d.category}><th scope="row">{d.category}</th><td className="num">{d.training}</td><td className="num">{d.validation}</td><td className="num">{d.reference ?? '—'}</td></tr>)}</tbody></table>}>
                    <ResponsiveContainer width="100%" height="100%">
                      <BarChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
                        <CartesianGrid strokeDasharray="3 3" />
                        <XAxis dataKey="category" interval={0} tick={{ fontSize: 11 }} />
                        <YAxis unit="%" />
                        <Tooltip />
                        <Legend />
                        <Bar dataKey="training" name="Training" fill="#0b5cad" isAnimationActive={false} />
                        <Bar dataKey="validation" name="Validation" fill="#d9480f" isAnimationActive={false} />
                        <Bar dataKey="reference" name="Reference" fill="#868e96" isAnimationActive={false} />
                      </BarChart>
                    </ResponsiveContainer>
                  </Figure>
                );
              })}
            </div>
          </Panel>
        </>
      ) : null}
    </Page>
  );
}
