import { Page } from '../../components/ui';

export function SiteStatus(_props: { params: Record<string, string> }) {
  return <Page title="SiteStatus"><p>Waiting on the API.</p></Page>;
}
