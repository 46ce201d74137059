/**
 * llama.cpp's built-in chat formats (src/llama-chat.cpp), ported line for line: the names a GGUF's
 * `tokenizer.chat_template` or a user may give instead of Jinja text ("chatml", "llama3", ...),
 * the substring heuristics llama.cpp uses to recognise a template's family
 * (`llm_chat_detect_template`), and the hand-written formatting for each family
 * (`llm_chat_apply_template`).
 *
 * These formats take role and content only: no tools, no extra fields. Jinja templates are the
 * normal path (./template.ts); these are for a GGUF whose template is a name, and for labels.
 */
/** The names llama.cpp accepts for its built-in formats (`llama_chat_builtin_templates`). */
export const BUILTIN_TEMPLATE_NAMES = [
  'chatml', 'llama2', 'llama2-sys', 'llama2-sys-bos', 'llama2-sys-strip', 'mistral-v1', 'mistral-v3',
  'mistral-v3-tekken', 'mistral-v7', 'mistral-v7-tekken', 'phi3', 'phi4', 'falcon3', 'zephyr', 'monarch',
  'gemma', 'orion', 'openchat', 'vicuna', 'vicuna-orca', 'deepseek', 'deepseek2', 'deepseek3',
  'deepseek-ocr', 'command-r', 'llama3', 'chatglm3', 'chatglm4', 'glmedge', 'minicpm', 'exaone3',
  'exaone4', 'exaone-moe', 'rwkv-world', 'granite', 'granite-4.0', 'granite-4.1', 'gigachat', 'megrez',
  'yandex', 'bailing', 'bailing-think', 'bailing2', 'llama4', 'smolvlm', 'hunyuan-moe', 'gpt-oss',
  'hunyuan-dense', 'hunyuan-vl', 'kimi-k2', 'seed_oss', 'grok-2', 'pangu-embedded', 'solar-open',
] as const;

/**
 * A built-in format. `dots1` is one llama.cpp detects from a template's text but has no name for
 * (it is not in `llama_chat_builtin_templates`).
 */
export type BuiltinTemplateName = (typeof BUILTIN_TEMPLATE_NAMES)[number] | 'dots1';

export function isBuiltinTemplateName(name: string): name is (typeof BUILTIN_TEMPLATE_NAMES)[number] {
  return (BUILTIN_TEMPLATE_NAMES as readonly string[]).includes(name);
}

/**
 * llama.cpp's `llm_chat_detect_template`: the built-in format a template name or Jinja text
 * corresponds to, by name or by the tokens the text contains; undefined when none matches.
 */
export function detectBuiltinTemplate(template: string): BuiltinTemplateName | undefined {
  if (isBuiltinTemplateName(template)) return template;
  const has = (needle: string) => template.includes(needle);
  if (has('<|im_start|>')) {
    if (has('<|im_sep|>')) return 'phi4';
    // SmolVLM uses <|im_start|> as BOS, but it is not ChatML.
    return has('<end_of_utterance>') ? 'smolvlm' : 'chatml';
  }
  if (template.startsWith('mistral') || has('[INST]')) {
    if (has('[SYSTEM_PROMPT]')) return 'mistral-v7';
    if (has("' [INST] ' + system_message") || has('[AVAILABLE_TOOLS]')) {
      // Mistral's official v1, v3 and v3-tekken templates.
      if (has(' [INST]')) return 'mistral-v1';
      if (has('"[INST]"')) return 'mistral-v3-tekken';
      return 'mistral-v3';
    }
    // Llama 2 and its variants.
    if (has('content.strip()')) return 'llama2-sys-strip';
    if (has("bos_token + '[INST]")) return 'llama2-sys-bos';
    if (has('<<SYS>>')) return 'llama2-sys';
    return 'llama2';
  }
  if (has('<|assistant|>') && has('<|end|>')) return 'phi3';
  if (has('[gMASK]<sop>')) return 'chatglm4';
  if (has('<|assistant|>') && has('<|user|>')) {
    if (has('<|tool_declare|>')) return 'exaone-moe';
    return has('</s>') ? 'falcon3' : 'glmedge';
  }
  if (has("<|{{ item['role'] }}|>") && has('<|begin_of_image|>')) return 'glmedge';
  if (has('<|user|>') && has('<|endoftext|>')) return 'zephyr';
  if (has("bos_token + message['role']")) return 'monarch';
  if (has('<start_of_turn>')) return 'gemma';
  if (has("'\\n\\nAssistant: ' + eos_token")) return 'orion';
  if (has('GPT4 Correct ')) return 'openchat';
  if (has('USER: ') && has('ASSISTANT: ')) return has('SYSTEM: ') ? 'vicuna-orca' : 'vicuna';
  if (has('### Instruction:') && has('<|EOT|>')) return 'deepseek';
  if (has('<|START_OF_TURN_TOKEN|>') && has('<|USER_TOKEN|>')) return 'command-r';
  if (has('<|start_header_id|>') && has('<|end_header_id|>')) return 'llama3';
  if (has('[gMASK]sop')) return 'chatglm3';
  if (has('<用户>')) return 'minicpm';
  if (has("'Assistant: ' + message['content'] + eos_token")) return 'deepseek2';
  if (has('<｜Assistant｜>') && has('<｜User｜>') && has('<｜end▁of▁sentence｜>')) return 'deepseek3';
  if (has('[|system|]') && has('[|assistant|]') && has('[|endofturn|]')) return has('[|tool|]') ? 'exaone4' : 'exaone3';
  if (has('rwkv-world') || has("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}")) return 'rwkv-world';
  if (has('<|start_of_role|>')) {
    if (has('<tool_call>') || has('<tools>')) return has('g4_default_system_message') ? 'granite-4.0' : 'granite-4.1';
    return 'granite';
  }
  if (has("message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]")) return 'gigachat';
  if (has('<|role_start|>')) return 'megrez';
  if (has(' Ассистент:')) return 'yandex';
  if (has('<role>ASSISTANT</role>') && has("'HUMAN'")) return 'bailing';
  if (has('<role>ASSISTANT</role>') && has('"HUMAN"') && has('<think>')) return 'bailing-think';
  if (has('<role>ASSISTANT</role>') && has('<role>HUMAN</role>') && has('<|role_end|>')) return 'bailing2';
  if (has('<|header_start|>') && has('<|header_end|>')) return 'llama4';
  if (has('<|endofuserprompt|>')) return 'dots1';
  if (has('<|extra_0|>') && has('<|extra_4|>')) return 'hunyuan-moe';
  if (has('<|start|>') && has('<|channel|>')) return 'gpt-oss';
  if (has('<｜hy_Assistant｜>') && has('<｜hy_begin▁of▁sentence｜>')) return 'hunyuan-vl';
  if (has('<｜hy_Assistant｜>') && has('<｜hy_place▁holder▁no▁3｜>')) return 'hunyuan-dense';
  if (has('<|im_assistant|>assistant<|im_middle|>')) return 'kimi-k2';
  if (has('<seed:bos>')) return 'seed_oss';
  if (has("'Assistant: '  + message['content'] + '<|separator|>")) return 'grok-2';
  if (has('[unused9]系统：[unused10]')) return 'pangu-embedded';
  if (has('<|begin|>') && has('<|end|>') && has('<|content|>')) return 'solar-open';
  return undefined;
}

/** C's isspace trim, as llama.cpp's `trim()` (ASCII whitespace only, unlike String.prototype.trim). */
function trim(text: string): string {
  return text.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');
}

function asciiUpper(text: string): string {
  return text.replace(/[a-z]/g, (c) => c.toUpperCase());
}

/** What a built-in format reads from a message. Roles are free text, as in llama.cpp. */
export interface BuiltinTurn {
  role: string;
  content: string;
}

/**
 * llama.cpp's `llm_chat_apply_template`: formats a conversation in a built-in format.
 * `addAssistant` opens the assistant's turn (add_generation_prompt); some formats ignore it, as in
 * llama.cpp.
 */
export function applyBuiltinTemplate(name: BuiltinTemplateName, chat: readonly BuiltinTurn[], addAssistant: boolean): string {
  let ss = '';
  switch (name) {
    case 'chatml':
      for (const m of chat) ss += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
      if (addAssistant) ss += '<|im_start|>assistant\n';
      break;
    case 'mistral-v7':
    case 'mistral-v7-tekken': {
      const space = name === 'mistral-v7' ? ' ' : '';
      for (const m of chat) {
        if (m.role === 'system') ss += `[SYSTEM_PROMPT]${space}${m.content}[/SYSTEM_PROMPT]`;
        else if (m.role === 'user') ss += `[INST]${space}${m.content}[/INST]`;
        else ss += `${space}${m.content}</s>`;
      }
      break;
    }
    case 'mistral-v1':
    case 'mistral-v3':
    case 'mistral-v3-tekken': {
      const leading = name === 'mistral-v1' ? ' ' : '';
      const trailing = name === 'mistral-v3-tekken' ? '' : ' ';
      const trimAssistant = name === 'mistral-v3';
      let insideTurn = false;
      for (const m of chat) {
        if (!insideTurn) {
          ss += `${leading}[INST]${trailing}`;
          insideTurn = true;
        }
        if (m.role === 'system') ss += `${m.content}\n\n`;
        else if (m.role === 'user') ss += `${m.content}${leading}[/INST]`;
        else {
          ss += `${trailing}${trimAssistant ? trim(m.content) : m.content}</s>`;
          insideTurn = false;
        }
      }
      break;
    }
    case 'llama2':
    case 'llama2-sys':
    case 'llama2-sys-bos':
    case 'llama2-sys-strip': {
      const supportsSystem = name !== 'llama2';
      const bosInsideHistory = name === 'llama2-sys-bos';
      const strip = name === 'llama2-sys-strip';
      let insideTurn = true; // no BOS at the beginning
      ss += '[INST] ';
      for (const m of chat) {
        const content = strip ? trim(m.content) : m.content;
        if (!insideTurn) {
          insideTurn = true;
          ss += bosInsideHistory ? '<s>[INST] ' : '[INST] ';
        }
        if (m.role === 'system') {
          // Without system support the prompt still goes into the first message, without <<SYS>>.
          ss += supportsSystem ? `<<SYS>>\n${content}\n<</SYS>>\n\n` : `${content}\n`;
        } else if (m.role === 'user') {
          ss += `${content} [/INST]`;
        } else {
          ss += `${content}</s>`;
          insideTurn = false;
        }
      }
      break;
    }
    case 'phi3':
      for (const m of chat) ss += `<|${m.role}|>\n${m.content}<|end|>\n`;
      if (addAssistant) ss += '<|assistant|>\n';
      break;
    case 'phi4':
      for (const m of chat) ss += `<|im_start|>${m.role}<|im_sep|>${m.content}<|im_end|>`;
      if (addAssistant) ss += '<|im_start|>assistant<|im_sep|>';
      break;
    case 'falcon3':
      for (const m of chat) ss += `<|${m.role}|>\n${m.content}\n`;
      if (addAssistant) ss += '<|assistant|>\n';
      break;
    case 'zephyr':
      for (const m of chat) ss += `<|${m.role}|>\n${m.content}<|endoftext|>\n`;
      if (addAssistant) ss += '<|assistant|>\n';
      break;
    case 'monarch':
      chat.forEach((m, i) => {
        ss += `${i === 0 ? '' : '<s>'}${m.role}\n${m.content}</s>\n`;
      });
      if (addAssistant) ss += '<s>assistant\n';
      break;
    case 'gemma': {
      // Gemma has no system role: the system prompt is merged into the next user message.
      let systemPrompt = '';
      for (const m of chat) {
        if (m.role === 'system') {
          systemPrompt += trim(m.content);
          continue;
        }
        const role = m.role === 'assistant' ? 'model' : m.role;
        ss += `<start_of_turn>${role}\n`;
        if (systemPrompt !== '' && role !== 'model') {
          ss += `${systemPrompt}\n\n`;
          systemPrompt = '';
        }
        ss += `${trim(m.content)}<end_of_turn>\n`;
      }
      if (addAssistant) ss += '<start_of_turn>model\n';
      break;
    }
    case 'orion': {
      let systemPrompt = '';
      for (const m of chat) {
        if (m.role === 'system') {
          systemPrompt += m.content;
        } else if (m.role === 'user') {
          ss += 'Human: ';
          if (systemPrompt !== '') {
            ss += `${systemPrompt}\n\n`;
            systemPrompt = '';
          }
          ss += `${m.content}\n\nAssistant: </s>`;
        } else {
          ss += `${m.content}</s>`;
        }
      }
      break;
    }
    case 'openchat':
      for (const m of chat) {
        if (m.role === 'system') ss += `${m.content}<|end_of_turn|>`;
        else ss += `GPT4 Correct ${asciiUpper(m.role.slice(0, 1))}${m.role.slice(1)}: ${m.content}<|end_of_turn|>`;
      }
      if (addAssistant) ss += 'GPT4 Correct Assistant:';
      break;
    case 'vicuna':
    case 'vicuna-orca':
      for (const m of chat) {
        if (m.role === 'system') ss += name === 'vicuna-orca' ? `SYSTEM: ${m.content}\n` : `${m.content}\n\n`;
        else if (m.role === 'user') ss += `USER: ${m.content}\n`;
        else if (m.role === 'assistant') ss += `ASSISTANT: ${m.content}</s>\n`;
      }
      if (addAssistant) ss += 'ASSISTANT:';
      break;
    case 'deepseek':
      for (const m of chat) {
        if (m.role === 'system') ss += m.content;
        else if (m.role === 'user') ss += `### Instruction:\n${m.content}\n`;
        else if (m.role === 'assistant') ss += `### Response:\n${m.content}\n<|EOT|>\n`;
      }
      if (addAssistant) ss += '### Response:\n';
      break;
    case 'command-r':
      for (const m of chat) {
        const token = m.role === 'system' ? '<|SYSTEM_TOKEN|>' : m.role === 'user' ? '<|USER_TOKEN|>' : m.role === 'assistant' ? '<|CHATBOT_TOKEN|>' : undefined;
        if (token) ss += `<|START_OF_TURN_TOKEN|>${token}${trim(m.content)}<|END_OF_TURN_TOKEN|>`;
      }
      if (addAssistant) ss += '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>';
      break;
    case 'llama3':
      for (const m of chat) ss += `<|start_header_id|>${m.role}<|end_header_id|>\n\n${trim(m.content)}<|eot_id|>`;
      if (addAssistant) ss += '<|start_header_id|>assistant<|end_header_id|>\n\n';
      break;
    case 'chatglm3':
      ss += '[gMASK]sop';
      for (const m of chat) ss += `<|${m.role}|>\n ${m.content}`;
      if (addAssistant) ss += '<|assistant|>';
      break;
    case 'chatglm4':
      ss += '[gMASK]<sop>';
      for (const m of chat) ss += `<|${m.role}|>\n${m.content}`;
      if (addAssistant) ss += '<|assistant|>\n';
      break;
    case 'glmedge':
      for (const m of chat) ss += `<|${m.role}|>\n${m.content}`;
      if (addAssistant) ss += '<|assistant|>';
      break;
    case 'minicpm':
      for (const m of chat) ss += m.role === 'user' ? `<用户>${trim(m.content)}<AI>` : trim(m.content);
      break;
    case 'deepseek2':
      for (const m of chat) {
        if (m.role === 'system') ss += `${m.content}\n\n`;
        else if (m.role === 'user') ss += `User: ${m.content}\n\n`;
        else if (m.role === 'assistant') ss += `Assistant: ${m.content}<｜end▁of▁sentence｜>`;
      }
      if (addAssistant) ss += 'Assistant:';
      break;
    case 'deepseek3':
      for (const m of chat) {
        if (m.role === 'system') ss += `${m.content}\n\n`;
        else if (m.role === 'user') ss += `<｜User｜>${m.content}`;
        else if (m.role === 'assistant') ss += `<｜Assistant｜>${m.content}<｜end▁of▁sentence｜>`;
      }
      if (addAssistant) ss += '<｜Assistant｜>';
      break;
    case 'deepseek-ocr':
      for (const m of chat) ss += m.content;
      break;
    case 'exaone3':
    case 'exaone4':
      for (const m of chat) {
        if (m.role === 'system') ss += `[|system|]${trim(m.content)}[|endofturn|]\n`;
        else if (m.role === 'user') ss += `[|user|]${trim(m.content)}\n`;
        else if (m.role === 'assistant') ss += `[|assistant|]${trim(m.content)}[|endofturn|]\n`;
        else if (m.role === 'tool' && name === 'exaone4') ss += `[|tool|]${trim(m.content)}[|endofturn|]\n`;
      }
      if (addAssistant) ss += '[|assistant|]';
      break;
    case 'exaone-moe':
      for (const m of chat) {
        if (['system', 'user', 'assistant', 'tool'].includes(m.role)) ss += `<|${m.role}|>\n${trim(m.content)}<|endofturn|>\n`;
      }
      if (addAssistant) ss += '<|assistant|>\n';
      break;
    case 'rwkv-world':
      // This format needs the model to have "\n\n" as its end-of-turn token.
      chat.forEach((m, i) => {
        if (m.role === 'system') ss += `System: ${trim(m.content)}\n\n`;
        else if (m.role === 'user') {
          ss += `User: ${trim(m.content)}\n\n`;
          if (i === chat.length - 1) ss += 'Assistant:';
        } else if (m.role === 'assistant') ss += `Assistant: ${trim(m.content)}\n\n`;
      });
      break;
    case 'granite':
      for (const m of chat) {
        ss += `<|start_of_role|>${m.role}<|end_of_role|>`;
        if (m.role === 'assistant_tool_call') ss += '<|tool_call|>';
        ss += `${m.content}<|end_of_text|>\n`;
      }
      if (addAssistant) ss += '<|start_of_role|>assistant<|end_of_role|>';
      break;
    case 'granite-4.0':
    case 'granite-4.1':
      for (const m of chat) {
        ss += m.role === 'assistant_tool_call'
          ? '<|start_of_role|>assistant<|end_of_role|><|tool_call|>'
          : `<|start_of_role|>${m.role}<|end_of_role|>`;
        ss += `${m.content}<|end_of_text|>\n`;
      }
      if (addAssistant) ss += '<|start_of_role|>assistant<|end_of_role|>';
      break;
    case 'gigachat': {
      const hasSystem = chat.length > 0 && chat[0]!.role === 'system';
      ss += hasSystem ? `<s>${chat[0]!.content}<|message_sep|>` : '<s>';
      for (const m of chat.slice(hasSystem ? 1 : 0)) {
        if (m.role === 'user') ss += `user<|role_sep|>${m.content}<|message_sep|>available functions<|role_sep|>[]<|message_sep|>`;
        else if (m.role === 'assistant') ss += `assistant<|role_sep|>${m.content}<|message_sep|>`;
      }
      if (addAssistant) ss += 'assistant<|role_sep|>';
      break;
    }
    case 'megrez':
      for (const m of chat) ss += `<|role_start|>${m.role}<|role_end|>${m.content}<|turn_end|>`;
      if (addAssistant) ss += '<|role_start|>assistant<|role_end|>';
      break;
    case 'yandex':
      // "\n\n" is this model's end-of-turn token.
      for (const m of chat) {
        if (m.role === 'user') ss += ` Пользователь: ${m.content}\n\n`;
        else if (m.role === 'assistant') ss += ` Ассистент: ${m.content}\n\n`;
      }
      if (addAssistant) ss += ' Ассистент:[SEP]';
      break;
    case 'bailing':
    case 'bailing-think':
      for (const m of chat) ss += `<role>${m.role === 'user' ? 'HUMAN' : asciiUpper(m.role)}</role>${m.content}`;
      if (addAssistant) ss += name === 'bailing-think' ? '<role>ASSISTANT</role><think>' : '<role>ASSISTANT</role>';
      break;
    case 'bailing2': {
      const hasSystem = chat.length > 0 && chat[0]!.role === 'system';
      if (!hasSystem) ss += '<role>SYSTEM</role>detailed thinking off<|role_end|>';
      for (const m of chat) ss += `<role>${m.role === 'user' ? 'HUMAN' : asciiUpper(m.role)}</role>${m.content}<|role_end|>`;
      if (addAssistant) ss += '<role>ASSISTANT</role>';
      break;
    }
    case 'llama4':
      for (const m of chat) ss += `<|header_start|>${m.role}<|header_end|>\n\n${trim(m.content)}<|eot|>`;
      if (addAssistant) ss += '<|header_start|>assistant<|header_end|>\n\n';
      break;
    case 'smolvlm':
      ss += '<|im_start|>';
      for (const m of chat) {
        if (m.role === 'system') ss += `${m.content}\n\n`;
        else if (m.role === 'user') ss += `User: ${m.content}<end_of_utterance>\n`;
        else ss += `Assistant: ${m.content}<end_of_utterance>\n`;
      }
      if (addAssistant) ss += 'Assistant:';
      break;
    case 'dots1':
      for (const m of chat) {
        if (m.role === 'system') ss += `<|system|>${m.content}<|endofsystem|>`;
        else if (m.role === 'user') ss += `<|userprompt|>${m.content}<|endofuserprompt|>`;
        else ss += `<|response|>${m.content}<|endofresponse|>`;
      }
      if (addAssistant) ss += '<|response|>';
      break;
    case 'hunyuan-moe':
      for (const m of chat) {
        if (m.role === 'system') ss += `<|startoftext|>${m.content}<|extra_4|>`;
        else if (m.role === 'assistant') ss += `${m.content}<|eos|>`;
        else ss += `<|startoftext|>${m.content}<|extra_0|>`;
      }
      break;
    case 'gpt-oss':
      for (const m of chat) ss += `<|start|>${m.role}<|message|>${m.content}${m.role === 'assistant' ? '<|return|>' : '<|end|>'}`;
      if (addAssistant) ss += '<|start|>assistant';
      break;
    case 'hunyuan-dense':
      chat.forEach((m, i) => {
        if (i === 0 && m.role === 'system') ss += `${m.content}<｜hy_place▁holder▁no▁3｜>`;
        if (m.role === 'assistant') ss += `<｜hy_Assistant｜>${m.content}<｜hy_place▁holder▁no▁2｜>`;
        else if (m.role === 'user') ss += `<｜hy_User｜>${m.content}<｜hy_Assistant｜>`;
      });
      break;
    case 'hunyuan-vl':
      ss += '<｜hy_begin▁of▁sentence｜>';
      chat.forEach((m, i) => {
        if (i === 0 && m.role === 'system') {
          ss += `${m.content}<｜hy_place▁holder▁no▁3｜>`;
          return;
        }
        if (m.role === 'user') ss += `${m.content}<｜hy_User｜>`;
        else if (m.role === 'assistant') ss += `${m.content}<｜hy_Assistant｜>`;
      });
      break;
    case 'kimi-k2':
      for (const m of chat) {
        if (m.role === 'system') ss += '<|im_system|>system<|im_middle|>';
        else if (m.role === 'user') ss += '<|im_user|>user<|im_middle|>';
        else if (m.role === 'assistant') ss += '<|im_assistant|>assistant<|im_middle|>';
        else if (m.role === 'tool') ss += '<|im_system|>tool<|im_middle|>';
        ss += `${m.content}<|im_end|>`;
      }
      if (addAssistant) ss += '<|im_assistant|>assistant<|im_middle|>';
      break;
    case 'seed_oss':
      for (const m of chat) ss += `<seed:bos>${m.role}\n${m.role === 'assistant' ? trim(m.content) : m.content}<seed:eos>`;
      if (addAssistant) ss += '<seed:bos>assistant\n';
      break;
    case 'grok-2':
      for (const m of chat) {
        if (m.role === 'system') ss += `System: ${trim(m.content)}<|separator|>\n\n`;
        else if (m.role === 'user') ss += `Human: ${trim(m.content)}<|separator|>\n\n`;
        else if (m.role === 'assistant') ss += `Assistant: ${m.content}<|separator|>\n\n`;
      }
      if (addAssistant) ss += 'Assistant:';
      break;
    case 'pangu-embedded': {
      const labels: Record<string, string> = { system: '系统', user: '用户', assistant: '助手', tool: '工具', function: '方法' };
      chat.forEach((m, i) => {
        if (i === 0 && m.role !== 'system') ss += '[unused9]系统：[unused10]';
        const label = Object.hasOwn(labels, m.role) ? labels[m.role] : undefined;
        if (label !== undefined) ss += `[unused9]${label}：${m.content}[unused10]`;
      });
      if (addAssistant) ss += '[unused9]助手：';
      break;
    }
    case 'solar-open':
      for (const m of chat) ss += `<|begin|>${m.role}<|content|>${m.content}<|end|>`;
      if (addAssistant) ss += '<|begin|>assistant';
      break;
  }
  return ss;
}
