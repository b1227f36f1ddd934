/**
 * The learning docs and the engine's source, served by the app itself (vite.config.ts copies
 * them): #/source?path=docs/learn/gradients.md&section=… renders a doc and scrolls to a section;
 * #/source?path=packages/engine/src/ops/dense.ts&symbol=dense shows the file with the symbol's line marked.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { slug, symbolLine } from '../learn-links.js';

export function SourceView({ query }: { query: URLSearchParams }) {
  const path = query.get('path') ?? '';
  const symbol = query.get('symbol');
  const section = query.get('section');
  const [text, setText] = useState<string | null>(null);
  const [html, setHtml] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const isDoc = path.startsWith('docs/learn/') && path.endsWith('.md');
  const valid = isDoc || (path.startsWith('packages/engine/src/') && path.endsWith('.ts'));

  useEffect(() => {
    setText(null);
    setHtml(null);
    setError(null);
    if (!valid || path.includes('..')) return setError(`${path}: not a learning doc or an engine source file`);
    void fetch(isDoc ? `/${path}` : `/source/${path}`).then(async (response) => {
      if (!response.ok) throw new Error(`${path}: ${response.status} ${response.statusText}`);
      const body = await response.text();
      setText(body);
      if (isDoc) {
        const { Marked } = await import('marked');
        const marked = new Marked({
          renderer: {
            heading({ tokens, depth }) {
              const inner = this.parser.parseInline(tokens);
              return `<h${depth} id="${slug(inner.replace(/<[^>]+>/g, '').replace(/&#39;/g, "'").replace(/&amp;/g, '&'))}">${inner}</h${depth}>\n`;
            },
            link({ href, tokens }) {
              const inner = this.parser.parseInline(tokens);
              // Links between docs and into the source stay in the app.
              const target = new URL(href, `https://app/${path}`).pathname.slice(1);
              if (/^(docs\/learn\/[\w-]+\.md|packages\/engine\/src\/[\w/-]+\.ts)$/.test(target)) return `<a href="#/source?path=${target}">${inner}</a>`;
              return `<a href="${href}">${inner}</a>`;
            },
          },
        });
        setHtml(await marked.parse(body.replace(/<!--[\s\S]*?-->/g, '')));
      }
    }).catch((e: Error) => setError(e.message));
  }, [path]);

  const line = !isDoc && text && symbol ? symbolLine(text, symbol) : undefined;
  useEffect(() => {
    const target = isDoc ? (section ? box.current?.querySelector(`[id="${CSS.escape(section)}"]`) : null) : line ? box.current?.querySelector(`#L${line}`) : null;
    target?.scrollIntoView({ block: isDoc ? 'start' : 'center' });
  }, [html, line, section]);

  if (error) return <p role="alert" class="error">{error}</p>;
  if (text === null) return <p class="muted">Loading {path}…</p>;
  return (
    <div ref={box} class="source-view">
      <p class="muted"><code>{path}</code>{symbol ? <> › <code>{symbol}</code>{line ? ` (line ${line})` : ' (not found)'}</> : null}</p>
      {isDoc ? (
        html === null ? <p class="muted">Rendering…</p> : <article class="doc" dangerouslySetInnerHTML={{ __html: html }} />
      ) : (
        <pre class="code" aria-label={`source of ${path}`}>
          {text.split('\n').map((content, i) => (
            <div key={i} id={`L${i + 1}`} class={i + 1 === line ? 'hit' : ''}><span class="ln" aria-hidden="true">{i + 1}</span>{content || ' '}</div>
          ))}
        </pre>
      )}
    </div>
  );
}
