import { Page } from '../../components/ui';

export function HubDashboard(_props: { params: Record<string, string> }) {
  return <Page title="HubDashboard"><p>Waiting on the API.</p></Page>;
}
