import { planDataset } from './src/generate.ts';
import { renderPixels } from './src/images.ts';
import { writeInstance } from './src/render.ts';
const plan = planDataset({ seed: 1, sites: 5, patients: 40, scale: 1, ctSlices: 8, prevalence: 0.5 });
const cxr = plan.instances.filter((i) => i.modality === 'DX' || i.modality === 'CR').slice(0, 30);
let t = performance.now(); for (const i of cxr) renderPixels(i.pixel); console.log('render ms', (performance.now() - t) / cxr.length);
t = performance.now(); for (const i of cxr) writeInstance('/tmp/o5', i); console.log('render+write ms', (performance.now() - t) / cxr.length);
t = performance.now(); for (const i of cxr) writeInstance('/tmp/o5', i); console.log('render+overwrite ms', (performance.now() - t) / cxr.length);
