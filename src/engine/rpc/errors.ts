/**
 * Errors across the worker boundary. Comlink's default 'throw' handler keeps only name, message
 * and stack; ours also keeps `detail`, so the UI gets the same named, actionable error the engine
 * raised (WebGPUUnavailableError with the adapter report, GgufFormatError with the offset, ...).
 * Both sides must install it: the worker before `expose`, the UI before `wrap`.
 */
import * as Comlink from 'comlink';
import { deserializeError, serializeError, type SerializedError } from '../errors.ts';

interface ThrownValue {
  value: unknown;
}

let installed = false;

export function installErrorTransfer(): void {
  if (installed) return;
  installed = true;
  // Comlink marks thrown values with a symbol it does not export: keep its own recognizer.
  const builtin = Comlink.transferHandlers.get('throw')!;
  const handler: Comlink.TransferHandler<ThrownValue, { isError: boolean; value: SerializedError | unknown }> = {
    canHandle: (value): value is ThrownValue => builtin.canHandle(value),
    serialize: ({ value }) => {
      const wire = value instanceof Error ? { isError: true, value: serializeError(value) } : { isError: false, value };
      return [wire, []];
    },
    deserialize: (wire) => {
      throw wire.isError ? deserializeError(wire.value as SerializedError) : wire.value;
    },
  };
  Comlink.transferHandlers.set('throw', handler as Comlink.TransferHandler<unknown, unknown>);
}
