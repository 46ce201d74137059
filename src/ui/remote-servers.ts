/**
 * The servers the user added (OpenAI-compatible: hearth serve, llama-server, vLLM, Ollama, a hosted
 * endpoint) and the remote model chosen for chats, as React state kept in this browser's
 * localStorage. Nothing is sent anywhere until the user adds a server (its model list is fetched
 * then) or sends a chat to a remote model. The API key is stored here only, and goes only to the
 * server it was entered for (openai-server.ts puts it in that server's Authorization header).
 *
 * localStorage rather than IndexedDB: the list is small, read once at start, and every tab of the
 * app sees the same servers. Removing a server forgets its key.
 */
import { useCallback, useState } from 'react';
import type { ChatClient } from '../engine/rpc/client.ts';
import { connectServer, listServerModels, normalizeServerUrl } from '../engine/rpc/openai-server.ts';

export interface RemoteServer {
  id: string;
  /** Normalized (normalizeServerUrl): no trailing slash, no /v1. */
  baseUrl: string;
  apiKey?: string | undefined;
  /** The model ids of its /v1/models, as last fetched. */
  models: string[];
}

/** A remote model chosen for chats: the chat goes to this server. */
export interface RemoteChoice {
  server: RemoteServer;
  model: string;
}

const SERVERS_KEY = 'hearth.servers';
const CHOICE_KEY = 'hearth.remoteModel';

function readServers(): RemoteServer[] {
  try {
    const list = JSON.parse(localStorage.getItem(SERVERS_KEY) ?? '[]') as unknown;
    if (!Array.isArray(list)) return [];
    return list.filter(
      (s): s is RemoteServer =>
        !!s && typeof s.id === 'string' && typeof s.baseUrl === 'string' && Array.isArray(s.models) && s.models.every((m: unknown) => typeof m === 'string') && (s.apiKey === undefined || typeof s.apiKey === 'string'),
    );
  } catch {
    return [];
  }
}

function readChoice(servers: RemoteServer[]): RemoteChoice | undefined {
  try {
    const saved = JSON.parse(localStorage.getItem(CHOICE_KEY) ?? 'null') as { serverId?: unknown; model?: unknown } | null;
    const server = servers.find((s) => s.id === saved?.serverId);
    return server && typeof saved?.model === 'string' ? { server, model: saved.model } : undefined;
  } catch {
    return undefined;
  }
}

/** The chat client for a remote model: the same OpenAI-shaped client as the local engine's. */
export function remoteChatClient(choice: RemoteChoice): ChatClient {
  return connectServer({ baseUrl: choice.server.baseUrl, apiKey: choice.server.apiKey, model: choice.model });
}

export interface RemoteServersHandle {
  servers: RemoteServer[];
  /** The remote model chats go to; undefined: the local engine answers. */
  choice: RemoteChoice | undefined;
  /** Checks the server (fetches its models) and adds it; throws a named error, adding nothing, when that fails. */
  add(url: string, apiKey: string): Promise<RemoteServer>;
  /** Fetches the server's models again (and, with `apiKey`, replaces its key first). */
  refresh(id: string, apiKey?: string): Promise<void>;
  /** Forgets the server and its key; a chat that used it goes back to the local model. */
  remove(id: string): void;
  /** Chats go to this server's model. */
  choose(serverId: string, model: string): void;
  /** Chats go to the local engine again. */
  chooseLocal(): void;
}

export function useRemoteServers(): RemoteServersHandle {
  const [servers, setServersState] = useState<RemoteServer[]>(readServers);
  const [choice, setChoiceState] = useState<RemoteChoice | undefined>(() => readChoice(readServers()));

  const setServers = useCallback((next: RemoteServer[]) => {
    localStorage.setItem(SERVERS_KEY, JSON.stringify(next));
    setServersState(next);
    // The choice follows its server (a new key, a refreshed list) and goes with it.
    setChoiceState((prev) => {
      const server = prev && next.find((s) => s.id === prev.server.id);
      if (!server) {
        localStorage.removeItem(CHOICE_KEY);
        return undefined;
      }
      return { server, model: prev.model };
    });
  }, []);

  const add = useCallback(
    async (url: string, apiKey: string) => {
      const baseUrl = normalizeServerUrl(url);
      const key = apiKey.trim() || undefined;
      const models = await listServerModels({ baseUrl, apiKey: key });
      const current = readServers();
      const same = current.find((s) => s.baseUrl === baseUrl);
      const server: RemoteServer = { id: same?.id ?? `server-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`, baseUrl, apiKey: key, models };
      setServers(same ? current.map((s) => (s.id === same.id ? server : s)) : [...current, server]);
      return server;
    },
    [setServers],
  );

  const refresh = useCallback(
    async (id: string, apiKey?: string) => {
      const server = readServers().find((s) => s.id === id);
      if (!server) return;
      const key = apiKey === undefined ? server.apiKey : apiKey.trim() || undefined;
      const models = await listServerModels({ baseUrl: server.baseUrl, apiKey: key });
      setServers(readServers().map((s) => (s.id === id ? { ...s, apiKey: key, models } : s)));
    },
    [setServers],
  );

  const remove = useCallback((id: string) => setServers(readServers().filter((s) => s.id !== id)), [setServers]);

  const choose = useCallback((serverId: string, model: string) => {
    const server = readServers().find((s) => s.id === serverId);
    if (!server) return;
    localStorage.setItem(CHOICE_KEY, JSON.stringify({ serverId, model }));
    setChoiceState({ server, model });
  }, []);

  const chooseLocal = useCallback(() => {
    localStorage.removeItem(CHOICE_KEY);
    setChoiceState(undefined);
  }, []);

  return { servers, choice, add, refresh, remove, choose, chooseLocal };
}
