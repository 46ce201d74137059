import { useEffect, useState } from 'react';
import type { EngineInfo, GpuReport } from '../engine/api.ts';
import { CapabilityReport } from './CapabilityReport.tsx';
import { engineClient } from './engine-client.ts';

type EngineState =
  | { status: 'starting' }
  | { status: 'ready'; info: EngineInfo; gpu: GpuReport }
  | { status: 'failed'; error: string };

export function App() {
  const [state, setState] = useState<EngineState>({ status: 'starting' });

  useEffect(() => {
    let cancelled = false;
    const engine = engineClient();
    Promise.all([engine.info(), engine.probe()])
      .then(([info, gpu]) => !cancelled && setState({ status: 'ready', info, gpu }))
      .catch((error: unknown) => !cancelled && setState({ status: 'failed', error: String(error) }));
    return () => {
      cancelled = true;
    };
  }, []);

  return (
    <div className="app">
      <header className="app-header">
        <h1>
          <img src="/icon.svg" alt="" width={28} height={28} /> Hearth
        </h1>
        <p className="tagline">Chat with a small open model that runs privately in this tab. Nothing leaves your device.</p>
      </header>
      <main>
        {state.status === 'starting' && (
          <p role="status" data-testid="engine-status">
            Starting the engine…
          </p>
        )}
        {state.status === 'failed' && (
          <div role="alert" className="panel error" data-testid="engine-status">
            <h2>The engine did not start</h2>
            <p>{state.error}</p>
          </div>
        )}
        {state.status === 'ready' && (
          <>
            <p role="status" className="muted" data-testid="engine-status" data-engine-version={state.info.version}>
              Engine {state.info.version} ready ({state.info.runtime}).
            </p>
            <CapabilityReport report={state.gpu} />
          </>
        )}
      </main>
    </div>
  );
}
