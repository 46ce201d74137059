import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256, sha256Hex } from './sha256.ts';
import { mulberry32 as rng } from '../../testing/random.ts';

const reference = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');


describe('Sha256', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(sha256Hex(new Uint8Array())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('matches node:crypto for every length around the padding boundaries', () => {
    const data = randomBytes(200);
    for (let n = 0; n <= 200; n++) expect(sha256Hex(data.subarray(0, n)), `length ${n}`).toBe(reference(data.subarray(0, n)));
  });

  it('gives the same digest however the input is split', () => {
    const random = rng(7);
    for (let trial = 0; trial < 40; trial++) {
      const data = randomBytes(Math.floor(random() * 5000));
      const hash = new Sha256();
      let at = 0;
      while (at < data.length) {
        const step = Math.floor(random() * (random() < 0.3 ? 3 : 300));
        hash.update(data.subarray(at, at + step));
        at += step;
      }
      expect(hash.length).toBe(data.length);
      expect(hash.hex(), `trial ${trial}, ${data.length} bytes`).toBe(reference(data));
    }
  });

  it('saves and restores its state at any split point, through JSON', () => {
    const random = rng(11);
    const data = randomBytes(3000);
    for (let trial = 0; trial < 30; trial++) {
      const cut = Math.floor(random() * data.length);
      const first = new Sha256().update(data.subarray(0, cut));
      const saved = JSON.parse(JSON.stringify(first.save()));
      const resumed = Sha256.restore(saved).update(data.subarray(cut));
      expect(resumed.hex(), `cut at ${cut}`).toBe(reference(data));
    }
  });

  it('rejects a saved state whose length does not match its pending bytes', () => {
    const state = new Sha256().update(new Uint8Array(70)).save();
    expect(() => Sha256.restore({ ...state, length: 64 })).toThrow(/length/);
  });

  it('hashes a few MB in one update like node:crypto', () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    expect(sha256Hex(data)).toBe(reference(data));
  });
});
