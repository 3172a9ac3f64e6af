import { generateDataset } from './src/index.ts';
const s = await generateDataset({ out: process.argv[2]!, seed: Number(process.argv[5] ?? 1), sites: 5, patients: Number(process.argv[3] ?? 100), scale: Number(process.argv[4] ?? 0.125), ctSlices: 8 });
console.log(JSON.stringify(s));
