import { Page } from '../../components/ui';

export function Quarantine(_props: { params: Record<string, string> }) {
  return <Page title="Quarantine"><p>Waiting on the API.</p></Page>;
}
