import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev -w @imago/web` proxies the API to a running `imago start` (port 8080 by default).
const api = process.env.IMAGO_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 900 },
  server: { proxy: { '/api': api, '/dicom-web': api } },
});
