/**
 * An `EngineApi` whose engine can move: first to the owner tab's engine, and, when that tab
 * closes, to the next owner's (or to this tab's own). Calls made while there is no engine to reach
 * wait for one. Calls in flight when the engine moves fail with `EngineMovedError` instead of
 * waiting forever for an answer from a tab that is gone.
 */
import type { EngineApi } from '../../api.ts';
import { HearthError } from '../../errors.ts';

/** The tab that ran the engine closed while this call was in flight; it did not finish. */
export class EngineMovedError extends HearthError {
  override name = 'EngineMovedError';
}

/** Every method of `EngineApi`, spelled out so the engine's shape is checked, not guessed from a Proxy. */
export const ENGINE_METHODS = [
  'info',
  'probe',
  'capabilities',
  'status',
  'loadModel',
  'cancelLoad',
  'unloadModel',
  'loadAdapter',
  'unloadAdapter',
  'chatCompletion',
  'transform',
  'abort',
  'countTokens',
  'measureContext',
  'listModels',
  'downloadModel',
  'cancelDownload',
  'importModelFile',
  'deleteModel',
  'storageUsage',
  'quantizeModel',
  'evaluateModels',
  'exportModel',
  'estimateTraining',
  'trainAdapter',
  'pauseTraining',
  'cancelTraining',
] as const satisfies ReadonlyArray<keyof EngineApi>;
// A method added to EngineApi and missing above fails to compile here.
type Missing = Exclude<keyof EngineApi, (typeof ENGINE_METHODS)[number]>;
const allMethodsListed: Missing extends never ? true : Missing = true;
void allMethodsListed;

/** An engine built from one function per method (every call goes through `call`). */
export function engineFrom(call: (method: keyof EngineApi, args: unknown[]) => Promise<unknown>): EngineApi {
  return Object.fromEntries(ENGINE_METHODS.map((method) => [method, (...args: unknown[]) => call(method, args)])) as unknown as EngineApi;
}

interface Link {
  engine: EngineApi;
  /** Rejects with EngineMovedError when the engine moves away from this link. */
  moved: Promise<never>;
  move(error: EngineMovedError): void;
}

export class MovableEngine {
  /** The stable engine the page's client wraps. */
  readonly engine: EngineApi;
  private link: Link | undefined;
  private waiting: Array<(link: Link) => void> = [];

  constructor() {
    this.engine = engineFrom(async (method, args) => {
      const link = this.link ?? (await new Promise<Link>((resolve) => this.waiting.push(resolve)));
      // Reflect.apply, not `.apply`: on a Comlink proxy, `.apply` would be a remote property.
      const call = Reflect.apply(link.engine[method], link.engine, args) as Promise<unknown>;
      return Promise.race([call, link.moved]);
    });
  }

  /** From now on calls go to `engine`; calls in flight on the engine before fail (`reason` says why). */
  moveTo(engine: EngineApi, reason = 'The engine moved to another tab.'): void {
    this.detach(reason);
    let move!: (error: EngineMovedError) => void;
    const moved = new Promise<never>((_, reject) => (move = reject));
    // Nobody may be racing it when it fires; that is no unhandled rejection.
    moved.catch(() => undefined);
    const link: Link = { engine, moved, move };
    this.link = link;
    for (const resolve of this.waiting.splice(0)) resolve(link);
  }

  /** Calls in flight fail with EngineMovedError; new calls wait for `moveTo`. */
  detach(reason = 'The tab that ran the engine closed.'): void {
    const link = this.link;
    this.link = undefined;
    link?.move(new EngineMovedError(`${reason} The request did not finish: send it again.`));
  }
}
