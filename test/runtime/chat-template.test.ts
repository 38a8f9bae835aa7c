/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The chat prompt comes from the checkpoint: the converter copies its chat template into the
 * package, the runtime renders it with @huggingface/jinja, and on the tiny checkpoint the token ids
 * are exactly those of the prompt the runtime used to hard-code. A package without a usable
 * template falls back with a notice. Time-aware prompts: LLaVA-Video's time instruction, its
 * number formatting, and a job that carries it through the engine (shared prefix included).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { convertCheckpoint } from '../../container/convert/convert';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import {
  BUILT_IN_FORMAT,
  chatFormat,
  fixed2,
  jobPrompts,
  loadChatFormat,
  loadTokenizer,
  sharedPrefixLength,
  timeInstruction,
  tokenizeQuestion,
  type PromptTokenizer,
} from '../../container/runtime/prompt';
import { generateTinyCheckpoint, VIDEO_TOKEN_ID } from '../../container/testing/tiny-checkpoint';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, questionId, STOCK_POOLING } from '../../lib/contracts';
import { tinyPackage } from './fixtures';

jest.setTimeout(300_000);

/** The prompt the runtime hard-coded before templates were rendered (issue 9's prompt.ts). */
const HARD_CODED = (q: string) => `<|im_start|>user\n<video>\n${q}<|im_end|>\n<|im_start|>assistant\n`;

let pkgDir: string;
let tokenizer: PromptTokenizer;

beforeAll(async () => {
  pkgDir = (await tinyPackage({ preset: 'tiny' })).packageDir;
  tokenizer = loadTokenizer(path.join(pkgDir, 'tokenizer.json'), path.join(pkgDir, 'tokenizer_config.json'));
});

describe('the checkpoint chat template', () => {
  it('is copied into the package and renders the same token ids as the old hard-coded prompt', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'longsight-model.json'), 'utf8'));
    expect(manifest.files.chatTemplate).toBe('chat_template.json');
    const { format, notice } = loadChatFormat({ chatTemplate: path.join(pkgDir, 'chat_template.json'), tokenizerConfig: path.join(pkgDir, 'tokenizer_config.json') });
    expect(notice).toBeUndefined();
    expect(format.source).toBe('checkpoint');
    for (const q of ['What happens in this video?', 'Select one.\nA. x\nB. y\nAnswer with the letter.\n', '\nWhat is shown?']) {
      expect(format.render(q)).toBe(HARD_CODED(q));
      expect(tokenizeQuestion(tokenizer, q, VIDEO_TOKEN_ID, format).ids).toEqual(tokenizer.encode(HARD_CODED(q)));
    }
  });

  it('falls back to the built-in template with a notice when the package has none, or only a text-only one', () => {
    // The tiny checkpoint's tokenizer_config holds Qwen2-Instruct's text-only template: it cannot place a video message's text.
    const r = loadChatFormat({ tokenizerConfig: path.join(pkgDir, 'tokenizer_config.json') });
    expect(r.format).toBe(BUILT_IN_FORMAT);
    expect(r.notice).toMatch(/tokenizer_config\.json \(chat_template\): the chat template does not place the question text exactly once: prompts use the built-in LLaVA-OneVision template/);
    expect(loadChatFormat({}).notice).toMatch(/^the package has no chat template: prompts use the built-in/);
    expect(() => chatFormat("{{ messages[0]['role'] }}<video>", 'checkpoint')).toThrow(/question text exactly once/);
  });

  it('a converted checkpoint without chat_template.json gets a notice and no template file; one with chat_template.jinja gets it wrapped', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-tpl-'));
    const ckpt = path.join(root, 'ckpt');
    generateTinyCheckpoint(ckpt, { preset: 'tiny' });
    const template = JSON.parse(fs.readFileSync(path.join(ckpt, 'chat_template.json'), 'utf8')).chat_template as string;
    fs.rmSync(path.join(ckpt, 'chat_template.json'));
    const notices: string[] = [];
    const bare = await convertCheckpoint(ckpt, path.join(root, 'bare'), { onNotice: (m) => notices.push(m) });
    expect(bare.files.chatTemplate).toBeUndefined();
    expect(fs.existsSync(path.join(root, 'bare', 'chat_template.json'))).toBe(false);
    expect(notices.join('\n')).toMatch(/has no chat_template\.json or chat_template\.jinja: the runtime will render prompts with the tokenizer_config's template if it renders a video, else with its built-in LLaVA-OneVision template/);

    fs.writeFileSync(path.join(ckpt, 'chat_template.jinja'), template);
    const jinja = await convertCheckpoint(ckpt, path.join(root, 'jinja'));
    expect(jinja.files.chatTemplate).toBe('chat_template.json');
    const { format } = loadChatFormat({ chatTemplate: path.join(root, 'jinja', 'chat_template.json') });
    expect(format.render('Why?')).toBe(HARD_CODED('Why?'));
    fs.rmSync(root, { recursive: true, force: true });
  });
});

describe('time-aware prompts', () => {
  it("formats times as Python's f'{x:.2f}' does (ties to even) and writes LLaVA-Video's instruction", () => {
    expect([0.125, 0.375, 0.625, 0.875, 2.5, 1.005, 12.3456, 0].map(fixed2)).toEqual(['0.12', '0.38', '0.62', '0.88', '2.50', '1.00', '12.35', '0.00']);
    expect(timeInstruction(10.5, [0, 2.625, 5.25])).toBe(
      'The video lasts for 10.50 seconds, and 3 frames are uniformly sampled from it. These frames are located at 0.00s,2.62s,5.25s.Please answer the following questions related to this video.',
    );
  });

  it('puts the instruction on the line before each question and shares it as part of the prefix', () => {
    const instruction = timeInstruction(4, [0.5, 1.5, 2.5, 3.5]);
    const questions = ['What colour is it?', 'How many frames?'];
    const { prompts, prefix } = jobPrompts(tokenizer, BUILT_IN_FORMAT, questions, VIDEO_TOKEN_ID, instruction);
    expect(prefix).toBe(`<|im_start|>user\n<video>\n${instruction}\n`);
    const n = sharedPrefixLength(tokenizer, prompts, prefix);
    expect(n).toBe(tokenizer.encode(prefix).length);
    questions.forEach((q, i) => expect([...prompts[0].ids.slice(0, n), ...prompts[i].ids.slice(n)]).toEqual(tokenizer.encode(HARD_CODED(`${instruction}\n${q}`))));
  });

  it('reaches the model through the engine: the prompt grows by the instruction, and a job without frame times is refused', async () => {
    const engine = await createOnnxEngine({ modelDir: pkgDir, executionProvider: 'cpu', threads: 1 });
    try {
      const frames = await Promise.all([0, 1].map((f) => sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200 * f, g: 40, b: 90 } } }).jpeg().toBuffer()));
      const questions = ['What colour is it?', 'Is it dark?'].map((text) => ({ id: questionId(text), text }));
      const base = InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, pooling: STOCK_POOLING, maxNewTokens: 2 });
      const video = { durationSeconds: 3, timestamps: [0.75, 2.25] };
      const plain = await engine.answer({ frames, questions, settings: base, video });
      const timed = await engine.answer({ frames, questions, settings: { ...base, timeAwarePrompt: true }, video });
      const extra = tokenizer.encode(`${timeInstruction(3, [0.75, 2.25])}\n`).length;
      timed.answers.forEach((a, i) => expect(a.promptTokens).toBe(plain.answers[i].promptTokens + extra));
      await expect(engine.answer({ frames, questions, settings: { ...base, timeAwarePrompt: true } })).rejects.toThrow(/time-aware prompt needs the time of each of the job's 2 frames \(EngineInput\.video is missing\)/);
    } finally {
      await engine.close();
    }
  });
});
