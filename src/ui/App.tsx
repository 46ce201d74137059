import { useEffect, useState, type DragEvent } from 'react';
import { serverHost } from '../engine/rpc/openai-server.ts';
import { CapabilityReport, CpuCapabilityReport } from './CapabilityReport.tsx';
import { BenchmarkPage } from './BenchmarkPage.tsx';
import { ChatView } from './ChatView.tsx';
import { ComparePage } from './ComparePage.tsx';
import { TransformView } from './TransformView.tsx';
import { ModelManager } from './ModelManager.tsx';
import { PersonalizePage } from './PersonalizePage.tsx';
import { UpdatePrompt } from './pwa.tsx';
import { useRemoteServers } from './remote-servers.ts';
import { usePreferences, type Theme } from './settings.ts';
import { loadedModel, useEngine, type EngineHandle } from './useEngine.ts';

type View = 'chat' | 'models' | 'compare' | 'personalize' | 'bench' | 'device';
const VIEWS: { id: View; label: string }[] = [
  { id: 'chat', label: 'Chat' },
  { id: 'models', label: 'Models' },
  { id: 'compare', label: 'Compare' },
  { id: 'personalize', label: 'Personalize' },
  { id: 'bench', label: 'Benchmark' },
  { id: 'device', label: 'Device' },
];

function initialView(): View {
  const hash = location.hash.slice(1);
  return VIEWS.some((v) => v.id === hash) ? (hash as View) : 'chat';
}

export function App() {
  const engineState = useEngine();
  const remote = useRemoteServers();
  // Picking a local model (a load, a file, a drop) sends the chats back to this device.
  const engine: EngineHandle = {
    ...engineState,
    loadCached: (id, label) => {
      remote.chooseLocal();
      return engineState.loadCached(id, label);
    },
    loadFile: (files, copy) => {
      remote.chooseLocal();
      return engineState.loadFile(files, copy);
    },
  };
  const remoteHost = remote.choice && serverHost(remote.choice.server.baseUrl);
  const [prefs, setPrefs] = usePreferences();
  const [view, setViewState] = useState<View>(initialView);
  // An adapter the Personalize page stored with "Use this adapter", for the chat to attach.
  const [adapterToAttach, setAdapterToAttach] = useState<string>();
  const { boot } = engine;

  const setView = (next: View) => {
    setViewState(next);
    history.replaceState(null, '', next === 'chat' ? location.pathname : `#${next}`);
  };

  useEffect(() => {
    const root = document.documentElement;
    if (prefs.theme === 'system') delete root.dataset.theme;
    else root.dataset.theme = prefs.theme;
  }, [prefs.theme]);

  // An encoder-decoder model (T5) turns text into text: its view replaces the chat.
  const transform = !remote.choice && loadedModel(engine.model)?.info.kind === 'encoder-decoder';
  const gpu = boot.status === 'ready' ? boot.gpu : undefined;
  const cpu = boot.status === 'ready' ? boot.cpu : undefined;

  // A GGUF file (or all parts of a split one) dropped anywhere on the app loads it, kept in the
  // store as the model manager's default does.
  const [dragging, setDragging] = useState(false);
  const [dropNotice, setDropNotice] = useState<string>();
  const hasFiles = (e: DragEvent) => [...e.dataTransfer.types].includes('Files');
  const onDragOver = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    setDragging(true);
  };
  const onDrop = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    setDragging(false);
    const all = [...e.dataTransfer.files];
    const files = all.filter((f) => f.name.toLowerCase().endsWith('.gguf'));
    const skipped = all.filter((f) => !files.includes(f)).map((f) => f.name);
    // Say why a drop did nothing (or only part of it was used), never ignore it silently.
    setDropNotice(skipped.length > 0 ? `${skipped.join(', ')} ${skipped.length === 1 ? 'is' : 'are'} not a GGUF model file (.gguf), so ${files.length > 0 ? 'only the .gguf files were loaded' : 'nothing was loaded'}. Hearth runs GGUF models, as published on Hugging Face.` : undefined);
    if (files.length === 0) return;
    setView('chat');
    void engine.loadFile(files, true);
  };

  return (
    <div className={dragging ? 'app dropping' : 'app'} onDragOver={onDragOver} onDragLeave={(e) => e.currentTarget === e.target && setDragging(false)} onDrop={onDrop} data-testid="app">
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="app-header">
        <h1>
          <img src="/icon.svg" alt="" width={28} height={28} /> Hearth
        </h1>
        <nav aria-label="Views" className="tabs">
          {VIEWS.map((v) => (
            <button key={v.id} type="button" aria-current={view === v.id ? 'page' : undefined} onClick={() => setView(v.id)} data-testid={`nav-${v.id}`}>
              {v.id === 'chat' && transform ? 'Transform' : v.label}
            </button>
          ))}
        </nav>
        <UpdatePrompt />
        <label className="theme">
          <span className="sr-only">Theme</span>
          <select value={prefs.theme} onChange={(e) => setPrefs({ theme: e.target.value as Theme })} data-testid="theme">
            <option value="system">System theme</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </label>
      </header>
      <main id="main" tabIndex={-1}>
        {dropNotice && (
          <div className="notice error" role="alert" data-testid="drop-notice">
            <span>{dropNotice}</span>
            <button type="button" className="ghost" onClick={() => setDropNotice(undefined)}>
              OK
            </button>
          </div>
        )}
        {boot.status === 'failed' && (
          <div role="alert" className="panel error">
            <h2>The engine did not start</h2>
            <p>{boot.error}</p>
            <p>Reload the page. If this keeps happening, this browser may not support module workers; try a current Chrome, Edge or Safari.</p>
          </div>
        )}
        {view === 'chat' && (
          <>
            {gpu && !gpu.available && <CapabilityReport report={gpu} cpu={cpu} />}
            {transform ? <TransformView model={engine.model} onOpenModels={() => setView('models')} /> : <ChatView model={engine.model} storedAdapters={engine.cached.filter((m) => m.kind === 'adapter')} remote={remote.choice} catalog={engine.catalog} prefs={prefs} setPrefs={setPrefs} onOpenModels={() => setView('models')} attachAdapter={adapterToAttach} onAdapterAttached={() => setAdapterToAttach(undefined)} />}
          </>
        )}
        {view === 'models' && <ModelManager engine={engine} gpu={gpu} remote={remote} />}
        {view === 'compare' && <ComparePage engine={engine} />}
        {view === 'personalize' && (
          <PersonalizePage
            engine={engine}
            onUseAdapter={(id) => {
              setAdapterToAttach(id);
              setView('chat');
            }}
          />
        )}
        {view === 'bench' && <BenchmarkPage engine={engine} />}
        {view === 'device' && (
          <>
            {boot.status === 'starting' && <p className="muted">Asking the GPU…</p>}
            {gpu && <CapabilityReport report={gpu} cpu={cpu} />}
            {boot.status !== 'failed' && <CpuCapabilityReport cpu={cpu} inUse={loadedModel(engine.model)?.info.backend} />}
          </>
        )}
      </main>
      <footer className="app-footer">
        {boot.status === 'starting' && (
          <span role="status" data-testid="engine-status">
            Starting the engine…
          </span>
        )}
        {boot.status === 'failed' && <span data-testid="engine-status">Engine failed to start.</span>}
        {boot.status === 'ready' && (
          <span data-testid="engine-status" data-engine-version={boot.info.version} data-engine-tab={engine.tab.role}>
            Engine {boot.info.version} ready ({boot.info.runtime}). {engine.tab.role === 'follower' ? 'Running in another tab of this app' : 'Runs in this tab'}
            {engine.tab.moves > 0 && <span data-testid="engine-moved"> (it moved when the tab that ran it closed)</span>}
            {remoteHost ? (
              <strong data-testid="footer-remote">; chats go to {remoteHost}: your messages leave this device.</strong>
            ) : (
              '; nothing leaves your device.'
            )}
          </span>
        )}
      </footer>
    </div>
  );
}
