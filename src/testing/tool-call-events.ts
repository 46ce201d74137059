/**
 * Joins a tool-call stream's events (ToolCallStream, or a completion stream's `delta`s) the way an
 * OpenAI client does, checking each piece has OpenAI's shape: a call's first piece has its id, type
 * and name with empty arguments, the next ones only argument fragments of the same index.
 */
import { expect } from 'vitest';
import type { ToolCall } from '../engine/api.ts';
import type { ToolCallEvent } from '../engine/generate/tool-calls.ts';

export function joinEvents(events: readonly ToolCallEvent[]) {
  let content = '';
  const calls: ToolCall[] = [];
  for (const event of events) {
    if ('content' in event) {
      content += event.content;
      continue;
    }
    const { index, id, function: fn } = event.tool_call;
    if (id !== undefined) {
      // A call's first piece: everything but the arguments, which follow.
      expect(index).toBe(calls.length);
      expect(event.tool_call).toEqual({ index, id, type: 'function', function: { name: fn.name, arguments: '' } });
      calls.push({ id, type: 'function', function: { name: fn.name!, arguments: '' } });
    } else {
      expect(event.tool_call).toEqual({ index, function: { arguments: fn.arguments } });
      calls[index]!.function.arguments += fn.arguments;
    }
  }
  return { content, calls };
}

