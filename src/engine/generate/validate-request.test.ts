import { describe, expect, it } from 'vitest';
import { InvalidRequestError, validateChatRequest, validateMeasureOptions, validateMessages } from './validate-request.ts';

const USER = [{ role: 'user', content: 'Hello' }];

function rejection(request: unknown): InvalidRequestError {
  try {
    validateChatRequest(request);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as Error).name).toBe('InvalidRequestError');
    return error as InvalidRequestError;
  }
  throw new Error(`accepted ${JSON.stringify(request)}`);
}

describe('chat request validation', () => {
  it('accepts a full valid request and keeps its values', () => {
    const request = {
      messages: [{ role: 'system', content: 'Be brief.' }, ...USER],
      stream: true, max_tokens: 16, temperature: 0.7, top_p: 0.9, top_k: 40, min_p: 0.05, repetition_penalty: 1.1,
      presence_penalty: 0.5, frequency_penalty: -0.5, seed: 7, stop: ['\n\n'], context_overflow: 'error', request_id: 'r1',
      model: 'anything', n: 1, logprobs: false,
    };
    expect(validateChatRequest(request)).toEqual(request);
  });

  it('treats null as absent, as OpenAI does', () => {
    expect(validateChatRequest({ messages: USER, max_tokens: null, seed: null })).toEqual({ messages: USER });
  });

  it('joins OpenAI content arrays of text parts', () => {
    const valid = validateChatRequest({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello, ' }, { type: 'text', text: 'world' }] }] });
    expect(valid.messages).toEqual([{ role: 'user', content: 'Hello, world' }]);
    expect(validateMessages([{ role: 'assistant', content: [] }])).toEqual([{ role: 'assistant', content: '' }]);
  });

  it.each([
    [null, 'request'],
    ['hi', 'request'],
    [{}, 'messages'],
    [{ messages: [] }, 'messages'],
    [{ messages: null }, 'messages'],
    [{ messages: [null] }, 'messages[0]'],
    [{ messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'user' }] }, 'messages[0].content'],
    [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0]'],
    [{ messages: [{ role: 'user', content: 'x', name: 'bob' }] }, 'messages[0].name'],
    [{ messages: USER, n: 2 }, 'n'],
    [{ messages: USER, logprobs: true }, 'logprobs'],
    [{ messages: USER, top_logprobs: 3 }, 'top_logprobs'],
    [{ messages: USER, max_tokens: -1 }, 'max_tokens'],
    [{ messages: USER, max_tokens: 0 }, 'max_tokens'],
    [{ messages: USER, max_tokens: 2.5 }, 'max_tokens'],
    [{ messages: USER, temperature: -1 }, 'temperature'],
    [{ messages: USER, temperature: Number.NaN }, 'temperature'],
    [{ messages: USER, temperature: '0.7' }, 'temperature'],
    [{ messages: USER, top_p: 1.5 }, 'top_p'],
    [{ messages: USER, top_k: -5 }, 'top_k'],
    [{ messages: USER, min_p: 2 }, 'min_p'],
    [{ messages: USER, repetition_penalty: 0 }, 'repetition_penalty'],
    [{ messages: USER, presence_penalty: 3 }, 'presence_penalty'],
    [{ messages: USER, frequency_penalty: Infinity }, 'frequency_penalty'],
    [{ messages: USER, seed: 'x' }, 'seed'],
    [{ messages: USER, seed: 1e30 }, 'seed'],
    [{ messages: USER, stop: [null] }, 'stop[0]'],
    [{ messages: USER, stop: [''] }, 'stop[0]'],
    [{ messages: USER, stop: 5 }, 'stop'],
    [{ messages: USER, context_overflow: 'truncate' }, 'context_overflow'],
    [{ messages: USER, request_id: '' }, 'request_id'],
    [{ messages: USER, stream: 'yes' }, 'stream'],
    [{ messages: USER, model: 3 }, 'model'],
  ])('rejects %j naming %s', (request, param) => {
    const error = rejection(request);
    expect(error.detail?.param).toBe(param);
    expect(error.message).toContain(`'${param}'`);
  });

  it('lists what is supported when a parameter is unknown', () => {
    expect(rejection({ messages: USER, functions: [] }).message).toMatch(/supported: messages, stream, max_tokens/);
  });

  it("takes prompt_format 'chat' or 'text' and rejects anything else by name", () => {
    expect(validateChatRequest({ messages: USER, prompt_format: 'text' })).toEqual({ messages: USER, prompt_format: 'text' });
    expect(validateChatRequest({ messages: USER, prompt_format: 'chat' })).toEqual({ messages: USER, prompt_format: 'chat' });
    const error = rejection({ messages: USER, prompt_format: 'raw' });
    expect(error.detail?.param).toBe('prompt_format');
    expect(error.message).toContain("'chat', 'text'");
  });

  it('checks the options of a context measure the same way', () => {
    expect(validateMeasureOptions(undefined)).toEqual({});
    expect(validateMeasureOptions({ prompt_format: 'text' })).toEqual({ prompt_format: 'text' });
    expect(() => validateMeasureOptions({ prompt_format: 'raw' })).toThrow(InvalidRequestError);
    expect(() => validateMeasureOptions({ template: 'none' })).toThrow(/'template' is not a supported option/);
  });
});
