// Reading `descent tune --json` output in tests.
import { jsonLines } from './cli-helpers.js';

/** The results table: every trial's record without its timing (and whether it ran in an earlier run), by trial. */
export function resultsTable(stdout: string): Array<Record<string, unknown>> {
  return jsonLines(stdout)
    .filter((record) => typeof record.trial === 'string')
    .map(({ seconds: _seconds, resumed: _resumed, ...rest }) => rest)
    .sort((a, b) => String(a.trial).localeCompare(String(b.trial)));
}
