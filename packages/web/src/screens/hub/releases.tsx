import { Page } from '../../components/ui';

export function HubReleases(_props: { params: Record<string, string> }) {
  return <Page title="HubReleases"><p>Waiting on the API.</p></Page>;
}
