import { Page } from '../../components/ui';

export function OptOut(_props: { params: Record<string, string> }) {
  return <Page title="OptOut"><p>Waiting on the API.</p></Page>;
}
