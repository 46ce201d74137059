/**
 * Conversations the template parity test renders with every template: with and without a system
 * prompt, one turn and several, tool calls and their results, and text that needs care in JSON
 * (quotes, non-ASCII, emoji).
 */
import type { ChatMessage, ChatTool } from '../../src/engine/chat/template.ts';

export interface Conversation {
  name: string;
  messages: ChatMessage[];
  tools?: ChatTool[];
}

const system: ChatMessage = { role: 'system', content: 'You are a helpful assistant.' };
const hello: ChatMessage = { role: 'user', content: 'Hello' };
const hi: ChatMessage = { role: 'assistant', content: 'Hi there! How can I help?' };
const hiThinking: ChatMessage = {
  role: 'assistant',
  content: 'Hi there! How can I help?',
  reasoning_content: 'The user greets me; greet back.',
};
const tricky: ChatMessage = { role: 'user', content: 'Say "ça va?" 👋 and\n  keep   spacing  ' };

export const weatherTool: ChatTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a city.',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', description: 'City name, e.g. "Zürich"' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city'],
    },
  },
};

const askWeather: ChatMessage = { role: 'user', content: "What's the weather in Zürich?" };
const callWeather: ChatMessage = {
  role: 'assistant',
  content: '',
  tool_calls: [
    { id: 'call_abc123', type: 'function', function: { name: 'get_weather', arguments: { city: 'Zürich', unit: 'celsius' } } },
  ],
};
/** OpenAI's wire format: arguments as a JSON string (llama.cpp passes them so to most templates). */
const callWeatherJson: ChatMessage = {
  role: 'assistant',
  content: '',
  tool_calls: [
    { id: 'call_abc123', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Zürich"}' } },
  ],
};
const weatherResult: ChatMessage = {
  role: 'tool',
  tool_call_id: 'call_abc123',
  name: 'get_weather',
  content: '{"temperature": 21, "condition": "sunny"}',
};
const weatherAnswer: ChatMessage = { role: 'assistant', content: 'It is 21 °C and sunny in Zürich.' };

export const conversations: Conversation[] = [
  { name: 'user', messages: [hello] },
  { name: 'system+user', messages: [system, hello] },
  { name: 'multi-turn', messages: [system, hello, hi, tricky] },
  { name: 'multi-turn, no system', messages: [hello, hi, tricky] },
  { name: 'multi-turn with reasoning', messages: [system, hello, hiThinking, tricky] },
  { name: 'tools offered', messages: [system, askWeather], tools: [weatherTool] },
  { name: 'tool call and result', messages: [system, askWeather, callWeather, weatherResult], tools: [weatherTool] },
  { name: 'tool call, JSON-string arguments', messages: [system, askWeather, callWeatherJson, weatherResult], tools: [weatherTool] },
  { name: 'tool round trip, no system', messages: [askWeather, callWeather, weatherResult, weatherAnswer, hello], tools: [weatherTool] },
];
