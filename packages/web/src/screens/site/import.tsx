import { Page } from '../../components/ui';

export function ClinicalImport(_props: { params: Record<string, string> }) {
  return <Page title="ClinicalImport"><p>Waiting on the API.</p></Page>;
}
