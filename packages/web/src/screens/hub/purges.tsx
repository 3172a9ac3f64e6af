import { Page } from '../../components/ui';

export function HubPurges(_props: { params: Record<string, string> }) {
  return <Page title="HubPurges"><p>Waiting on the API.</p></Page>;
}
