/**
 * The chat prompt for a video question, rendered from the checkpoint's own chat template
 * (`chat_template.json`, or the tokenizer_config's) with Hugging Face's Jinja implementation, as
 * `processor.apply_chat_template` does: one user turn holding the video and the question, then the
 * generation prompt. With LLaVA-OneVision's template that is
 *   `<|im_start|>user\n<video>\n{question}<|im_end|>\n<|im_start|>assistant\n`
 * (no system turn). A package without a usable template falls back to that template, with a notice.
 * Tokenised with the checkpoint's tokenizer.json through Hugging Face's JS tokenizers; the single
 * `<video>` token is later replaced by all visual embeddings.
 *
 * Time-aware prompts put LLaVA-Video's time instruction on the line before the question.
 *
 * Shared prefix: several questions about one video reuse the KV cache of the tokens before the
 * question. BPE may merge across the boundary (e.g. a question that starts with a newline), so the
 * split is decided on the token ids of each full prompt, never by tokenising the parts separately.
 */
import * as fs from 'node:fs';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';

export const VIDEO_PLACEHOLDER = '<video>';

/** The chat template llava-hf ships with LLaVA-OneVision (transformers' convert_llava_onevision_weights_to_hf.py). */
export const LLAVA_ONEVISION_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] }}{% endgeneration %}{% endfor %}{% endif %}{{'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** What LLaVA-OneVision's template renders before and after the question. */
export const PROMPT_PREFIX = `<|im_start|>user\n${VIDEO_PLACEHOLDER}\n`;
export const PROMPT_SUFFIX = '<|im_end|>\n<|im_start|>assistant\n';

/** How a package's questions become chat prompts. */
export interface ChatFormat {
  /** 'checkpoint': the package's own template; 'built-in': LLaVA-OneVision's (the package had none). */
  source: 'checkpoint' | 'built-in';
  /** The whole prompt for one question about the video. */
  render(text: string): string;
}

const SENTINEL = '\u0001question\u0001';

/** Compiles a chat template and checks that it renders one video placeholder and the question text once. */
export function chatFormat(template: string, source: ChatFormat['source'], variables: Record<string, unknown> = {}): ChatFormat {
  const compiled = new Template(template);
  const render = (text: string) =>
    compiled.render({ ...variables, messages: [{ role: 'user', content: [{ type: 'video' }, { type: 'text', text }] }], add_generation_prompt: true });
  const probe = render(SENTINEL);
  if (probe.split(SENTINEL).length !== 2) throw new Error('the chat template does not place the question text exactly once');
  if (probe.split(VIDEO_PLACEHOLDER).length !== 2) throw new Error(`the chat template does not render one ${VIDEO_PLACEHOLDER} for a video`);
  return { source, render };
}

export const BUILT_IN_FORMAT: ChatFormat = chatFormat(LLAVA_ONEVISION_CHAT_TEMPLATE, 'built-in');

/** The template text of a `chat_template.json` / `tokenizer_config.json` value (a string, or named templates). */
export function templateText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const t = named.find((x) => x.name === 'default')?.template ?? named[0]?.template;
    return typeof t === 'string' ? t : undefined;
  }
  return undefined;
}

/**
 * The package's chat format: its `chat_template.json`, else its tokenizer_config's template when it
 * renders a video (a text-only Qwen2 template does not), else the built-in one with a notice.
 */
export function loadChatFormat(files: { chatTemplate?: string; tokenizerConfig?: string }): { format: ChatFormat; notice?: string } {
  const config = files.tokenizerConfig && fs.existsSync(files.tokenizerConfig) ? (JSON.parse(fs.readFileSync(files.tokenizerConfig, 'utf8')) as Record<string, unknown>) : {};
  const variables = Object.fromEntries(['bos_token', 'eos_token', 'pad_token'].flatMap((k) => (typeof config[k] === 'string' ? [[k, config[k]]] : [])));
  const candidates: { where: string; text?: string }[] = [];
  if (files.chatTemplate && fs.existsSync(files.chatTemplate)) {
    candidates.push({ where: files.chatTemplate, text: templateText((JSON.parse(fs.readFileSync(files.chatTemplate, 'utf8')) as { chat_template?: unknown }).chat_template) });
  }
  if (config.chat_template !== undefined) candidates.push({ where: `${files.tokenizerConfig} (chat_template)`, text: templateText(config.chat_template) });
  const problems: string[] = [];
  for (const c of candidates) {
    if (!c.text) continue;
    try {
      return { format: chatFormat(c.text, 'checkpoint', variables) };
    } catch (e) {
      problems.push(`${c.where}: ${(e as Error).message}`);
    }
  }
  const why = problems.length ? problems.join('; ') : 'the package has no chat template';
  return { format: BUILT_IN_FORMAT, notice: `${why}: prompts use the built-in LLaVA-OneVision template` };
}

export function chatPrompt(question: string, format: ChatFormat = BUILT_IN_FORMAT): string {
  return format.render(question);
}

/** Python's `f"{x:.2f}"`: toFixed, but exact ties (x·8 odd, e.g. 0.125) round half to even. */
export function fixed2(x: number): string {
  if (Number.isInteger(x * 8) && !Number.isInteger(x * 4)) {
    const down = Math.floor(x * 100);
    return ((down % 2 === 0 ? down : down + 1) / 100).toFixed(2);
  }
  return x.toFixed(2);
}

/**
 * LLaVA-Video's time instruction, as its training and inference code write it (including the
 * missing space before "Please"): the video's length and each sampled frame's time.
 */
export function timeInstruction(durationSeconds: number, timestamps: readonly number[]): string {
  const at = timestamps.map((t) => `${fixed2(t)}s`).join(',');
  return `The video lasts for ${fixed2(durationSeconds)} seconds, and ${timestamps.length} frames are uniformly sampled from it. These frames are located at ${at}.Please answer the following questions related to this video.`;
}

export interface PromptTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  tokenId(token: string): number | undefined;
}

export function loadTokenizer(tokenizerJsonPath: string, tokenizerConfigPath?: string): PromptTokenizer {
  const json = JSON.parse(fs.readFileSync(tokenizerJsonPath, 'utf8'));
  const config = tokenizerConfigPath && fs.existsSync(tokenizerConfigPath) ? JSON.parse(fs.readFileSync(tokenizerConfigPath, 'utf8')) : {};
  const tok = new Tokenizer(json, config);
  return {
    // The chat template already holds the special tokens: add none.
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
    tokenId: (token) => tok.token_to_id(token),
  };
}

export interface TokenizedQuestion {
  /** Full prompt ids, with exactly one video token id. */
  ids: number[];
  /** Index of the video token in `ids`. */
  videoIndex: number;
}

/** The text the template receives for a question: the question, after the time instruction when there is one. */
function questionText(question: string, instruction?: string): string {
  return instruction ? `${instruction}\n${question}` : question;
}

export function tokenizeQuestion(tokenizer: PromptTokenizer, question: string, videoTokenId: number, format: ChatFormat = BUILT_IN_FORMAT, instruction?: string): TokenizedQuestion {
  const ids = tokenizer.encode(format.render(questionText(question, instruction)));
  const where = ids.flatMap((id, i) => (id === videoTokenId ? [i] : []));
  if (where.length !== 1) {
    throw new Error(
      where.length === 0
        ? `the tokenizer did not map "${VIDEO_PLACEHOLDER}" to the video token id ${videoTokenId}`
        : `the prompt holds ${where.length} video tokens (does the question contain "${VIDEO_PLACEHOLDER}"?)`,
    );
  }
  return { ids, videoIndex: where[0] };
}

/** What the template renders before the question (and its time instruction's line): the part every question of a job shares. */
export function promptPrefix(format: ChatFormat = BUILT_IN_FORMAT, instruction?: string): string {
  const whole = format.render(questionText(SENTINEL, instruction));
  return whole.slice(0, whole.indexOf(SENTINEL));
}

/** A job's prompts: every question through the chat format, with the time instruction when asked for. */
export function jobPrompts(
  tokenizer: PromptTokenizer,
  format: ChatFormat,
  questions: readonly string[],
  videoTokenId: number,
  instruction?: string,
): { prompts: TokenizedQuestion[]; prefix: string } {
  return {
    prompts: questions.map((q) => tokenizeQuestion(tokenizer, q, videoTokenId, format, instruction)),
    prefix: promptPrefix(format, instruction),
  };
}

/**
 * Number of leading token ids that every question's prompt shares and that can be prefilled once:
 * the template's prefix (`<|im_start|>user\n<video>\n`, and the time instruction's line when there
 * is one) when every prompt starts with its ids, else everything up to and including the video token
 * (special tokens are split off before BPE, so that part never merges with the question). Always
 * leaves at least one token per question to prefill.
 */
export function sharedPrefixLength(tokenizer: PromptTokenizer, prompts: TokenizedQuestion[], prefix: string = PROMPT_PREFIX): number {
  const template = tokenizer.encode(prefix);
  const startsWithTemplate = prompts.every(
    (p) => p.ids.length > template.length && template.every((id, i) => p.ids[i] === id),
  );
  if (startsWithTemplate) return template.length;
  const videoEnd = prompts[0].videoIndex + 1;
  for (const p of prompts) {
    if (p.videoIndex + 1 !== videoEnd || !p.ids.slice(0, videoEnd).every((id, i) => id === prompts[0].ids[i])) {
      throw new Error('prompts differ before the video token: cannot share a prefix');
    }
  }
  return videoEnd;
}
