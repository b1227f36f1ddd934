#!/usr/bin/env node
// The `descent` command. This file is in the repository (dist/ is built after install), so npm can
// link it into node_modules/.bin at install time.
import { runProgram } from '../dist/main.js';

await runProgram();
