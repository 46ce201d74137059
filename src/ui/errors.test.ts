import { describe, expect, it } from 'vitest';
import { describeError } from './errors.ts';

describe('describeError', () => {
  it('turns named engine errors into a title and an action', () => {
    const e = Object.assign(new Error('The prompt has 900 tokens; the context holds 512.'), { name: 'ContextWindowExceededError' });
    const f = describeError(e);
    expect(f.title).toBe('The conversation is too long');
    expect(f.message).toMatch(/^The prompt has 900 tokens.*Start a new chat/);
  });
  it('reports a local file that does not parse as a format problem, not a damaged download', () => {
    const e = Object.assign(new Error('"x.gguf" is not a usable GGUF model: invalid magic'), { name: 'IntegrityError', detail: { cause: 'GgufFormatError' } });
    expect(describeError(e).title).toBe('Not a usable GGUF file');
  });
  it('keeps unknown errors readable', () => {
    expect(describeError(new TypeError('boom'))).toMatchObject({ title: 'Something went wrong', message: 'boom', name: 'TypeError' });
    expect(describeError('plain').message).toBe('plain');
  });
});
