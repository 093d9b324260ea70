// The console: a key (unless none is needed), a navigation bar, and the page the URL's hash names.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { startLiveStats, stopLiveStats } from './live/live-stats';
import { linkTo, useRoute, type Route } from './router';
import { forgetKey } from './session-key';
import { KeyGate, type Session } from './views/key-gate';
import { KeysView } from './views/keys-view';
import { LiveView } from './views/live-view';
import { ModelView } from './views/model-view';
import { ModelsView } from './views/models-view';
import { TryItView } from './views/try-it-view';
import { UploadView } from './views/upload-view';
import { UsageView } from './views/usage-view';

function Page(props: { route: Route }) {
  const { route } = props;
  switch (route.page) {
    case 'model':
      return html`<${ModelView} key=${route.model} model=${route.model!} />`;
    case 'try':
      return html`<${TryItView} key=${route.model} model=${route.model!} />`;
    case 'upload':
      return html`<${UploadView} />`;
    case 'live':
      return html`<${LiveView} />`;
    case 'keys':
      return html`<${KeysView} />`;
    case 'usage':
      return html`<${UsageView} />`;
    default:
      return html`<${ModelsView} />`;
  }
}

function Navigation(props: { route: Route; session: Session; onSignOut: () => void }) {
  const { route, session } = props;
  const pages: Array<[Route['page'], string]> = [
    ['models', 'Models'],
    ['upload', 'Upload'],
    ['live', 'Live'],
    ...(session.canListKeys ? ([['keys', 'Keys']] as Array<[Route['page'], string]>) : []),
    ...(session.canReadUsage ? ([['usage', 'Usage']] as Array<[Route['page'], string]>) : []),
  ];
  const current = route.page === 'model' || route.page === 'try' ? 'models' : route.page;
  return html`<header>
    <strong>Gantry</strong>
    <nav>
      ${pages.map(([page, label]) => html`<a href=${linkTo(page)} class=${page === current ? 'current' : ''} data-testid=${`nav-${page}`}>${label}</a>`)}
    </nav>
    ${session.keyed ? html`<button type="button" onClick=${props.onSignOut} data-testid="sign-out">Forget key</button>` : html`<span class="muted">no key needed</span>`}
  </header>`;
}

export function App() {
  const [session, setSession] = useState<Session | undefined>();
  const route = useRoute();
  useEffect(() => {
    if (session === undefined) return undefined;
    startLiveStats();
    return stopLiveStats;
  }, [session]);
  if (session === undefined) return html`<${KeyGate} onSession=${setSession} />`;
  const signOut = () => {
    forgetKey();
    // The next key may not see the page this one was on.
    location.hash = linkTo('models');
    setSession(undefined);
  };
  return html`<${Navigation} route=${route} session=${session} onSignOut=${signOut} />
    <main><${Page} route=${route} /></main>`;
}
