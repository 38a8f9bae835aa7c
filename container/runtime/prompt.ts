/**
 * The LLaVA-OneVision (Qwen2) chat prompt for a video question, tokenised with the checkpoint's
 * tokenizer.json through Hugging Face's JS tokenizers:
 *   `<|im_start|>user\n<video>\n{question}<|im_end|>\n<|im_start|>assistant\n`
 * (the hub chat template with one video and no system turn). The single `<video>` token is later
 * replaced by all visual embeddings.
 *
 * Shared prefix: several questions about one video reuse the KV cache of the tokens before the
 * question. BPE may merge across the boundary (e.g. a question that starts with a newline), so the
 * split is decided on the token ids of each full prompt, never by tokenising the parts separately.
 */
import * as fs from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

export const VIDEO_PLACEHOLDER = '<video>';
export const PROMPT_PREFIX = `<|im_start|>user\n${VIDEO_PLACEHOLDER}\n`;
export const PROMPT_SUFFIX = '<|im_end|>\n<|im_start|>assistant\n';

export function chatPrompt(question: string): string {
  return `${PROMPT_PREFIX}${question}${PROMPT_SUFFIX}`;
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

export function tokenizeQuestion(tokenizer: PromptTokenizer, question: string, videoTokenId: number): TokenizedQuestion {
  const ids = tokenizer.encode(chatPrompt(question));
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

/**
 * Number of leading token ids that every question's prompt shares and that can be prefilled once:
 * the template prefix `<|im_start|>user\n<video>\n` when every prompt starts with its ids, else
 * everything up to and including the video token (special tokens are split off before BPE, so that
 * part never merges with the question). Always leaves at least one token per question to prefill.
 */
export function sharedPrefixLength(tokenizer: PromptTokenizer, prompts: TokenizedQuestion[]): number {
  const template = tokenizer.encode(PROMPT_PREFIX);
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
