/**
 * Runs the GEMM kernel suite on its own: prints the markdown table and writes the result to
 * packages/bench/results/kernels-<date>.json.
 *
 *   node packages/bench/dist/kernel-suite-main.js [--quick]
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { formatKernelSuite, runKernelSuite } from './kernel-suite.js';

const quick = process.argv.includes('--quick');
const result = await runKernelSuite({ quick });
process.stdout.write(`\n${formatKernelSuite(result)}\n`);

const dir = fileURLToPath(new URL('../results/', import.meta.url));
const file = `${dir}kernels-${result.date.slice(0, 10)}.json`;
await mkdir(dir, { recursive: true });
// Written under a temporary name and renamed, so an interrupted run leaves no half file.
await writeFile(`${file}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
await rename(`${file}.tmp`, file);
process.stdout.write(`\nwrote ${file}\n`);
