#!/usr/bin/env node
// The `rtl` command. The code lives in ../dist (built by `npm install` / `npm run build`).
import('../dist/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write(
      'rtl: the CLI is not built yet; run `npm run build` (or `npm install`) in the rtl checkout first\n',
    );
    process.exit(1);
  }
  throw err;
});
