/** What every route module gets. */
import type { Store } from '@descent/store';
import type { Accounts } from './accounts.js';

export interface ServerContext {
  store: Store;
  accounts: Accounts;
}
