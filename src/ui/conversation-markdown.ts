/**
 * One conversation as a Markdown file, and a safe file name for it. The file is plain text: the
 * messages go in as written (a reply's Markdown stays Markdown), and nothing is rendered to HTML,
 * so there is nothing in it that a viewer would run.
 */
import type { Conversation, StoredMessage } from './conversations.ts';

function heading(message: StoredMessage): string {
  if (message.role === 'user') return 'You';
  const versions = message.versions?.length ?? 0;
  return versions > 1 ? `Assistant (version ${(message.version ?? versions - 1) + 1} of ${versions})` : 'Assistant';
}

/** One line of text, for a heading: control characters (line breaks included) become spaces. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** The conversation as Markdown: a title, the system prompt quoted, then each message under a heading. */
export function conversationMarkdown(conversation: Conversation, exportedAt = new Date()): string {
  const lines = [`# ${oneLine(conversation.title) || 'Conversation'}`, '', `Exported from Hearth on ${exportedAt.toISOString().slice(0, 10)}.`, ''];
  if (conversation.systemPrompt.trim()) {
    lines.push('System prompt:', '', ...conversation.systemPrompt.split('\n').map((line) => `> ${line}`.trimEnd()), '');
  }
  for (const message of conversation.messages) {
    lines.push(`## ${heading(message)}`, '', message.content.trimEnd(), '');
    if (message.error) lines.push(`(The reply ended with an error: ${oneLine(message.error)})`, '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Names that Windows reserves for devices, whatever the extension. */
const RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)$/i;

/**
 * A file name from a conversation's title: letters, digits, spaces, dots, dashes and underscores
 * only (no path separators, control or bidirectional-override characters that could disguise the
 * extension), hyphens for spaces, at most 80 characters, then `.ext`.
 */
export function exportFileName(title: string, ext: string): string {
  let base = title
    .normalize('NFKC')
    .replace(/[^\p{L}\p{N} ._-]+/gu, ' ')
    .trim()
    .replace(/\s+/g, '-')
    .replace(/-{2,}/g, '-')
    .slice(0, 80)
    .replace(/^[.-]+|[.-]+$/g, '');
  if (!base) base = 'conversation';
  if (RESERVED.test(base)) base = `${base}-chat`;
  return `${base}.${ext}`;
}
