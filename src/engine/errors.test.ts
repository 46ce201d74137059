import { describe, expect, it } from 'vitest';
import { DeviceLostError, HearthError, WebGPUUnavailableError, deserializeError, serializeError } from './errors.ts';

describe('named errors', () => {
  it('carry their class name as a stable name', () => {
    expect(new WebGPUUnavailableError('x').name).toBe('WebGPUUnavailableError');
    expect(new DeviceLostError('x').name).toBe('DeviceLostError');
    expect(new WebGPUUnavailableError('x')).toBeInstanceOf(HearthError);
  });

  it('survive serialization with name, message and detail', () => {
    const original = new DeviceLostError('lost it', { reason: 'unknown' });
    const copy = deserializeError(structuredClone(serializeError(original)));
    expect(copy.name).toBe('DeviceLostError');
    expect(copy.message).toBe('lost it');
    expect((copy as HearthError).detail).toEqual({ reason: 'unknown' });
  });

  it('serialize non-errors too', () => {
    expect(serializeError('plain')).toEqual({ name: 'Error', message: 'plain' });
  });
});
