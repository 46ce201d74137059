/**
 * Models page, "Servers": add an OpenAI-compatible server (its base URL and an optional API key),
 * see its models beside the local ones, marked as leaving the device, pick one for chats, refresh
 * or remove the server. The request that lists a server's models is the first thing ever sent to
 * it, and it is sent only when the user adds (or refreshes) that server.
 */
import { useState, type FormEvent } from 'react';
import { serverHost } from '../engine/rpc/openai-server.ts';
import { describeError, type FriendlyError } from './errors.ts';
import type { RemoteServersHandle } from './remote-servers.ts';

export function ServersPanel({ remote }: { remote: RemoteServersHandle }) {
  const [url, setUrl] = useState('');
  const [key, setKey] = useState('');
  const [adding, setAdding] = useState(false);
  const [addError, setAddError] = useState<FriendlyError>();
  const [serverErrors, setServerErrors] = useState<Record<string, FriendlyError>>({});
  const [refreshing, setRefreshing] = useState<string>();

  const add = async (event: FormEvent) => {
    event.preventDefault();
    if (!url.trim()) return;
    setAdding(true);
    setAddError(undefined);
    try {
      const server = await remote.add(url, key);
      setServerErrors(({ [server.id]: _, ...rest }) => rest);
      setUrl('');
      setKey('');
    } catch (error) {
      setAddError(describeError(error));
    } finally {
      setAdding(false);
    }
  };

  const refresh = async (id: string) => {
    setRefreshing(id);
    try {
      await remote.refresh(id);
      setServerErrors(({ [id]: _, ...rest }) => rest);
    } catch (error) {
      setServerErrors((e) => ({ ...e, [id]: describeError(error) }));
    } finally {
      setRefreshing(undefined);
    }
  };

  return (
    <section className="panel" aria-labelledby="servers-heading" data-testid="servers">
      <h2 id="servers-heading">Servers</h2>
      <p className="muted">
        Chat with a model that runs on another machine: a server with OpenAI&apos;s API, such as <code>hearth serve</code>, llama.cpp&apos;s <code>llama-server</code>, vLLM or Ollama.
        Unlike the models above, <strong>your messages then leave this device</strong> and go to that server; the conversations stay stored here. Nothing is sent to a server until you add it.
      </p>
      <form className="row wrap server-form" onSubmit={(e) => void add(e)}>
        <label>
          Server URL{' '}
          {/* Text, not type=url: a malformed address gets the app's explanation, not the browser's tooltip. */}
          <input type="text" inputMode="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="http://localhost:8080" spellCheck={false} data-testid="server-url" />
        </label>
        <label>
          API key (optional){' '}
          <input type="password" value={key} onChange={(e) => setKey(e.target.value)} autoComplete="off" aria-describedby="server-key-help" data-testid="server-key" />
        </label>
        <button type="submit" disabled={adding || !url.trim()} data-testid="add-server">
          {adding ? 'Connecting…' : 'Add a server'}
        </button>
      </form>
      <p id="server-key-help" className="muted small">
        The key is kept in this browser only and sent only to that server. To change it, add the same URL again with the new key.
      </p>
      {addError && (
        <p className="message-error" role="alert" data-testid="server-error">
          <strong>{addError.title}</strong>: {addError.message}
        </p>
      )}
      {remote.servers.length > 0 && (
        <ul className="catalog" data-testid="server-list">
          {remote.servers.map((server) => {
            const host = serverHost(server.baseUrl);
            const error = serverErrors[server.id];
            return (
              <li key={server.id} className="catalog-item" data-testid="server" data-host={host}>
                <div className="catalog-main">
                  <h3>
                    {host} <span className="badge remote-badge">↗ leaves this device</span>
                  </h3>
                  <p className="muted small">
                    {server.baseUrl} · {server.apiKey ? 'with an API key' : 'no API key'} · {server.models.length} model{server.models.length === 1 ? '' : 's'}
                  </p>
                  {error && (
                    <p className="message-error" role="alert" data-testid="server-error">
                      <strong>{error.title}</strong>: {error.message}
                    </p>
                  )}
                  {server.models.length === 0 && <p className="small">The server lists no models.</p>}
                  <ul className="server-models">
                    {server.models.map((model) => {
                      const chosen = remote.choice?.server.id === server.id && remote.choice.model === model;
                      return (
                        <li key={model} data-testid="remote-model" data-model={model}>
                          <span className="remote-model-name">{model}</span>{' '}
                          <span className="muted small">on {host}</span>{' '}
                          <button type="button" onClick={() => remote.choose(server.id, model)} disabled={chosen} aria-label={chosen ? `${model} on ${host} is in use` : `Use ${model} on ${host}`} data-testid="use-remote">
                            {chosen ? 'In use' : 'Use'}
                          </button>
                        </li>
                      );
                    })}
                  </ul>
                </div>
                <div className="catalog-actions">
                  <button type="button" className="ghost" onClick={() => void refresh(server.id)} disabled={refreshing === server.id} data-testid="refresh-server">
                    {refreshing === server.id ? 'Refreshing…' : 'Refresh models'}
                  </button>
                  <button type="button" className="ghost" onClick={() => remote.remove(server.id)} aria-label={`Remove the server ${host}`} data-testid="remove-server">
                    Remove
                  </button>
                </div>
              </li>
            );
          })}
        </ul>
      )}
      {remote.choice && (
        <p className="row wrap" data-testid="remote-in-use">
          <span>
            Chats go to <strong>{remote.choice.model}</strong> on <strong>{serverHost(remote.choice.server.baseUrl)}</strong>.
            {!remote.choice.server.models.includes(remote.choice.model) && ' The server no longer lists this model: pick another, or replies will fail.'}
          </span>
          <button type="button" className="ghost" onClick={remote.chooseLocal} data-testid="use-local">
            Use this device&apos;s model instead
          </button>
        </p>
      )}
    </section>
  );
}
