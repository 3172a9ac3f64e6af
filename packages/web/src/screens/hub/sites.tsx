import { Page } from '../../components/ui';

export function HubSites(_props: { params: Record<string, string> }) {
  return <Page title="HubSites"><p>Waiting on the API.</p></Page>;
}
