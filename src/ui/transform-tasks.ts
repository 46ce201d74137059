/**
 * The tasks the "Transform text" view offers for an encoder-decoder model: Flan-T5's instruction
 * prefixes (the phrasings of its training mixture, as in the model card's examples), as data. The
 * model reads `prefix + text`; 'Custom' sends the text as written.
 */
export interface TransformTask {
  id: string;
  label: string;
  /** Put before the user's text, as the model was trained to read it. */
  prefix: string;
  /** Shown in the empty text box. */
  placeholder: string;
}

export const TRANSFORM_TASKS: readonly TransformTask[] = [
  { id: 'translate-de', label: 'Translate English to German', prefix: 'translate English to German: ', placeholder: 'How old are you?' },
  { id: 'translate-fr', label: 'Translate English to French', prefix: 'translate English to French: ', placeholder: 'The weather is nice today.' },
  { id: 'translate-ro', label: 'Translate English to Romanian', prefix: 'translate English to Romanian: ', placeholder: 'Where is the train station?' },
  { id: 'summarize', label: 'Summarize', prefix: 'summarize: ', placeholder: 'Paste a paragraph to shorten.' },
  { id: 'question', label: 'Answer a question', prefix: 'Answer the following question. ', placeholder: 'What is the capital of France?' },
  { id: 'grammar', label: 'Fix the grammar', prefix: 'Fix the grammar: ', placeholder: 'She no went to the market yesterday.' },
  { id: 'custom', label: 'Custom (the text as written)', prefix: '', placeholder: 'Write the whole instruction and text.' },
];

/** What the model reads for `text` under `task`. */
export function transformInput(task: TransformTask, text: string): string {
  return `${task.prefix}${text.trim()}`;
}
