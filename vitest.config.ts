import { defineConfig } from 'vitest/config';

// One root config, one project per package plus the cross-package tests in test/.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'engine', include: ['packages/engine/test/**/*.test.ts'], testTimeout: 60_000 } },
      { test: { name: 'kernels', include: ['packages/kernels-wasm/test/**/*.test.ts'], testTimeout: 60_000 } },
      { test: { name: 'images', include: ['packages/images/test/**/*.test.ts'], testTimeout: 60_000 } },
      { test: { name: 'server', include: ['packages/server/test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 } },
      { test: { name: 'jobs', include: ['packages/jobs/test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 } },
      { test: { name: 'store', include: ['packages/store/test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 120_000 } },
      { test: { name: 'cli', include: ['packages/cli/test/**/*.test.ts'], testTimeout: 120_000 } },
      { test: { name: 'bench', include: ['packages/bench/test/**/*.test.ts'], testTimeout: 180_000 } },
      { test: { name: 'fuzz', include: ['packages/fuzz/test/**/*.test.ts'], testTimeout: 120_000 } },
      { test: { name: 'web', include: ['packages/web/test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, expect: { poll: { timeout: 20_000 } } } },
      { test: { name: 'e2e', include: ['test/**/*.test.ts'], testTimeout: 180_000, hookTimeout: 180_000 } },
    ],
  },
});
