import { Page } from '../../components/ui';

export function HubStudies(_props: { params: Record<string, string> }) {
  return <Page title="HubStudies"><p>Waiting on the API.</p></Page>;
}
