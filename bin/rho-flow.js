#!/usr/bin/env node
// The CLI bundled by `npm run build` (scripts/bundle.js): a few chunks load faster than ~200 modules.
import '../dist/bundle/main.js';
