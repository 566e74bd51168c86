// Chat templates rendered as transformers' `apply_chat_template(..., tokenize=False)` renders them: the
// tokenizer's Jinja `chat_template` with `messages`, `tools`, `documents`, `add_generation_prompt`, the special
// tokens as strings (`bos_token`, `eos_token`, …) and any extra template variables (e.g. Qwen3's `enable_thinking`),
// `raise_exception` and `strftime_now` as globals, and `continue_final_message` cut after the final message.
import { Template } from '@huggingface/jinja';

/** One conversation turn; templates may read further fields (`tool_calls`, `reasoning_content`, …). */
export interface ChatMessage {
  role: string;
  /** A string, or content blocks (`[{type: 'text', text}]`) for templates that take them. */
  content: string | readonly Record<string, unknown>[];
  [field: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the header that starts the assistant's turn (the prompt for generation). Default false. */
  addGenerationPrompt?: boolean;
  /** End the text inside the final message (no end-of-turn), so the model continues it. Default false. */
  continueFinalMessage?: boolean;
  /** Tool (function) JSON schemas, as transformers passes them after converting functions. */
  tools?: readonly Record<string, unknown>[];
  /** Retrieval documents for RAG templates. */
  documents?: readonly Record<string, unknown>[];
  /** Extra template variables, as transformers' `**kwargs` (e.g. `{ enable_thinking: false }` for Qwen3). */
  variables?: Record<string, unknown>;
}

/** The special tokens transformers puts in the template context (its `special_tokens_map`); unset ones are absent. */
export interface TemplateSpecialTokens {
  bos_token?: string;
  eos_token?: string;
  unk_token?: string;
  pad_token?: string;
  additional_special_tokens?: readonly string[];
}

/** The error a template's own `raise_exception(...)` call, or a template bug, turns into. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

/** A parsed chat template, rendered any number of times. Parse errors name the template's problem. */
export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string, private readonly specialTokens: TemplateSpecialTokens = {}) {
    if (typeof source !== 'string' || source.length === 0) throw new ChatTemplateError('the chat template must be a non-empty string');
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`cannot parse the chat template: ${(e as Error).message}`);
    }
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    checkMessages(messages);
    const { addGenerationPrompt = false, continueFinalMessage = false, tools, documents, variables = {} } = options;
    if (addGenerationPrompt && continueFinalMessage) {
      // transformers refuses the same combination.
      throw new ChatTemplateError('continueFinalMessage and addGenerationPrompt are not compatible: continue the final message, or add a header that starts a new assistant turn');
    }
    let rendered: string;
    try {
      rendered = this.template.render({
        ...this.specialTokens,
        ...variables,
        messages,
        tools: tools ?? null,
        documents: documents ?? null,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (e) {
      throw new ChatTemplateError(`the chat template failed: ${(e as Error).message}`);
    }
    return continueFinalMessage ? cutAfterFinalMessage(rendered, messages[messages.length - 1]) : rendered;
  }
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new ChatTemplateError('messages must be a non-empty array of {role, content}');
  messages.forEach((message, i) => {
    if (typeof message !== 'object' || message === null || typeof message.role !== 'string') {
      throw new ChatTemplateError(`message ${i} must be an object with a string "role", got ${JSON.stringify(message)}`);
    }
  });
}

/** transformers' continue_final_message: the text up to the end of the final message's content. */
function cutAfterFinalMessage(rendered: string, final: ChatMessage): string {
  let content = final.content;
  if (Array.isArray(content)) {
    const block = [...content].reverse().find((b) => typeof b.text === 'string');
    if (!block) throw new ChatTemplateError('continueFinalMessage is set but the final message has no text to continue');
    content = block.text as string;
  }
  if (typeof content !== 'string') throw new ChatTemplateError('continueFinalMessage is set but the final message has no text content');
  const stripped = content.trim();
  const at = rendered.lastIndexOf(stripped);
  if (at < 0) throw new ChatTemplateError('continueFinalMessage is set but the final message does not appear in the rendered chat');
  const kept = content.trimStart();
  // Keep the message's trailing spaces when the template kept them, else cut at its stripped end.
  return rendered.slice(at, at + kept.length) === content ? rendered.slice(0, at + kept.length) : rendered.slice(0, at + stripped.length);
}
