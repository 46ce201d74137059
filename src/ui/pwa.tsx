/// <reference types="vite-plugin-pwa/client" />
/**
 * The service worker (precaches the app shell, see vite.config.ts) and the update prompt: when a
 * new version is deployed, a small banner offers to reload; nothing reloads on its own, so a reply
 * being generated is never cut off.
 */
import { useEffect, useState } from 'react';
import { registerSW } from 'virtual:pwa-register';

export function UpdatePrompt() {
  const [update, setUpdate] = useState<((reload?: boolean) => Promise<void>) | undefined>();
  const [offlineReady, setOfflineReady] = useState(false);

  useEffect(() => {
    if (!('serviceWorker' in navigator)) return;
    const updateSW = registerSW({
      onNeedRefresh: () => setUpdate(() => updateSW),
      onOfflineReady: () => {
        setOfflineReady(true);
        setTimeout(() => setOfflineReady(false), 6000);
      },
    });
  }, []);

  if (update) {
    return (
      <div className="toast" role="status" data-testid="update-prompt">
        <span>A new version of Hearth is ready.</span>
        <button type="button" onClick={() => void update(true)}>
          Reload
        </button>
        <button type="button" className="ghost" onClick={() => setUpdate(undefined)}>
          Later
        </button>
      </div>
    );
  }
  if (offlineReady) {
    return (
      <div className="toast" role="status" data-testid="offline-ready">
        <span>Hearth now works offline.</span>
        <button type="button" className="ghost" onClick={() => setOfflineReady(false)}>
          OK
        </button>
      </div>
    );
  }
  return null;
}
