/**
 * The app: one page per task, chosen by the URL's hash (#/predict, #/datasets, …), so the server
 * only ever serves index.html and the API. Pages that need the server wait for a session; the
 * in-browser pages (Predict's engine, Train in your browser, Learn) run the engine in the page.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onSignedOut, type Me } from './api.js';
import { currentSession, signOut } from './session.js';
import { SignIn } from './pages/SignIn.js';
import { Datasets } from './pages/Datasets.js';
import { Train } from './pages/Train.js';
import { Models } from './pages/Models.js';
import { Predict } from './pages/Predict.js';
import { Predictions } from './pages/Predictions.js';
import { BrowserTrain } from './pages/BrowserTrain.js';
import { Learn } from './pages/Learn.js';
import { SourceView } from './pages/SourceView.js';
import './style.css';

interface Route {
  path: string;
  title: string;
  /** The least scope the page needs; null: no session needed. */
  scope: Me['scope'] | null;
  page: (props: { me: Me | null; query: URLSearchParams }) => preact.JSX.Element;
}

const ROUTES: Route[] = [
  { path: 'predict', title: 'Predict', scope: 'predict', page: Predict },
  { path: 'datasets', title: 'Datasets', scope: 'train', page: Datasets },
  { path: 'train', title: 'Train', scope: 'train', page: Train },
  { path: 'models', title: 'Models', scope: 'predict', page: Models },
  { path: 'predictions', title: 'Predictions', scope: 'train', page: Predictions },
  { path: 'browser-train', title: 'Train in your browser', scope: 'train', page: BrowserTrain },
  { path: 'learn', title: 'Learn', scope: null, page: Learn },
];
const HIDDEN: Route[] = [{ path: 'source', title: 'Source', scope: null, page: SourceView }];
const RANK = { predict: 0, train: 1, admin: 2 } as const;

function parseHash(): { path: string; query: URLSearchParams } {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  return { path: path || 'predict', query: new URLSearchParams(query) };
}

function App() {
  const [location_, setLocation] = useState(parseHash);
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => {
    const changed = () => {
      setLocation(parseHash());
      setMenuOpen(false);
    };
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  useEffect(() => {
    void currentSession().then(setMe);
    return onSignedOut(() => setMe(null));
  }, []);

  const route = [...ROUTES, ...HIDDEN].find((r) => r.path === location_.path) ?? ROUTES[0];
  useEffect(() => {
    document.title = `${route.title} · descent`;
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [route]);

  // When the first page shows its content (not "Loading…"): what "first page usable" measures (scripts/measure.mjs).
  const ready = route.scope === null || me !== undefined;
  useEffect(() => {
    if (ready && performance.getEntriesByName('descent:usable').length === 0) performance.mark('descent:usable');
  }, [ready]);

  let content: preact.JSX.Element;
  if (route.scope !== null && me === undefined) content = <p class="muted">Loading…</p>;
  else if (route.scope !== null && me === null) content = <SignIn onSignedIn={setMe} />;
  else if (route.scope !== null && me && RANK[me.scope] < RANK[route.scope]) content = <p role="alert" class="error">This page needs a {route.scope} account; you are signed in with {me.scope}.</p>;
  else content = <route.page me={me ?? null} query={location_.query} />;

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>Skip to content</a>
      <header class="top">
        <a class="brand" href="#/predict">descent</a>
        <button type="button" class="menu-button" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>Menu</button>
        <nav id="nav" aria-label="Pages" class={menuOpen ? 'open' : ''}>
          <ul>
            {ROUTES.map((r) => (
              <li key={r.path}><a href={`#/${r.path}`} aria-current={r === route ? 'page' : undefined}>{r.title}</a></li>
            ))}
          </ul>
        </nav>
        <div class="account">
          {me ? (
            <>
              <span class="muted">{me.user ?? 'signed in'}</span>
              <button type="button" class="link" onClick={() => void signOut().then(() => setMe(null))}>Sign out</button>
            </>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <h1>{route.title}</h1>
        {content}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
