/**
 * The chat prompt through the checkpoint's tokenizer.json (the real Qwen BPE vocabulary with
 * LLaVA-OneVision's <image>/<video>): special tokens map to their ids, the video placeholder is one
 * token, and the shared-prefix split never changes the token sequence of a full prompt.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTokenizerConfig, makeTokenizerJson, VIDEO_TOKEN_ID } from '../../container/testing/tiny-checkpoint';
import { chatPrompt, loadTokenizer, PROMPT_PREFIX, sharedPrefixLength, tokenizeQuestion, type PromptTokenizer } from '../../container/runtime/prompt';

const IM_START = 151644;
const IM_END = 151645;
const NEWLINE = 198; // "\n" (Ċ)
const USER = 872;
const ASSISTANT = 77091;

let tokenizer: PromptTokenizer;

beforeAll(() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-tok-'));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(makeTokenizerJson()));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(makeTokenizerConfig()));
  tokenizer = loadTokenizer(path.join(dir, 'tokenizer.json'), path.join(dir, 'tokenizer_config.json'));
});

describe('chat prompt tokenisation', () => {
  it('maps the template to the Qwen2 special ids and <video> to 151647', () => {
    expect(chatPrompt('Why?')).toBe('<|im_start|>user\n<video>\nWhy?<|im_end|>\n<|im_start|>assistant\n');
    const { ids, videoIndex } = tokenizeQuestion(tokenizer, 'What happens in the video?', VIDEO_TOKEN_ID);
    expect(ids.slice(0, 5)).toEqual([IM_START, USER, NEWLINE, VIDEO_TOKEN_ID, NEWLINE]);
    expect(videoIndex).toBe(3);
    expect(ids.slice(-5)).toEqual([IM_END, NEWLINE, IM_START, ASSISTANT, NEWLINE]);
    expect(tokenizer.decode(ids.slice(5, -5))).toBe('What happens in the video?');
    expect(tokenizer.tokenId('<video>')).toBe(VIDEO_TOKEN_ID);
    expect(tokenizer.tokenId('<image>')).toBe(151646);
    expect(tokenizer.tokenId('<|endoftext|>')).toBe(151643);
  });

  it('splits the shared prefix on token ids: prefix + rest is exactly each full prompt', () => {
    const questions = ['What is shown?', 'How many people appear?', 'Describe the scene in detail.'];
    const prompts = questions.map((q) => tokenizeQuestion(tokenizer, q, VIDEO_TOKEN_ID));
    const n = sharedPrefixLength(tokenizer, prompts);
    expect(n).toBe(tokenizer.encode(PROMPT_PREFIX).length);
    for (let i = 0; i < prompts.length; i++) {
      expect([...prompts[0].ids.slice(0, n), ...prompts[i].ids.slice(n)]).toEqual(tokenizer.encode(chatPrompt(questions[i])));
    }
  });

  it('falls back to the video token as the boundary when BPE merges the template newline into the question', () => {
    // "\n" + "\nWhat" tokenises as "\n\n" + "What": the template prefix is not a token prefix.
    const merged = tokenizeQuestion(tokenizer, '\nWhat is shown?', VIDEO_TOKEN_ID);
    const plain = tokenizeQuestion(tokenizer, 'What is shown?', VIDEO_TOKEN_ID);
    expect(merged.ids[merged.videoIndex + 1]).not.toBe(NEWLINE);
    const n = sharedPrefixLength(tokenizer, [plain, merged]);
    expect(n).toBe(plain.videoIndex + 1);
    expect([...plain.ids.slice(0, n), ...merged.ids.slice(n)]).toEqual(tokenizer.encode(chatPrompt('\nWhat is shown?')));
  });

  it('rejects a question that smuggles in another video placeholder', () => {
    expect(() => tokenizeQuestion(tokenizer, 'compare <video> with this', VIDEO_TOKEN_ID)).toThrow(/2 video tokens/);
  });
});
