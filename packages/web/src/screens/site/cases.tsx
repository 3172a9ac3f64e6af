import { Page } from '../../components/ui';

export function SiteCases(_props: { params: Record<string, string> }) {
  return <Page title="SiteCases"><p>Waiting on the API.</p></Page>;
}

export function SiteCase(_props: { params: Record<string, string> }) {
  return <Page title="Case"><p>Waiting on the API.</p></Page>;
}
