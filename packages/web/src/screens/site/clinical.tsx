import { Page } from '../../components/ui';

export function ClinicalForm(_props: { params: Record<string, string> }) {
  return <Page title="ClinicalForm"><p>Waiting on the API.</p></Page>;
}
