/**
 * The benchmark rules against lmms-eval's documented behaviour (v0.5: tasks/videomme/utils.py,
 * tasks/mlvu/utils.py + mlvu_dev.yaml, tasks/longvideobench/utils.py + longvideobench_val_v.yaml):
 * prompts character for character, answer extraction case by case, the scores (accuracy, MLVU's
 * M-Avg), the predictions file, the sweep grid and the results file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCHMARK_DEFINITIONS } from '../../container/eval/benchmarks';
import { longVideoBenchPrompt } from '../../container/eval/benchmarks/longvideobench';
import { mlvuPrompt, mlvuQuestion } from '../../container/eval/benchmarks/mlvu';
import { videoMmePrompt } from '../../container/eval/benchmarks/videomme';
import { extractLongVideoBench, extractMlvu, extractVideoMme, seededChoice } from '../../container/eval/extract';
import { expandGrid, parseFramesList, parsePoolingList, parseRopeList, settingName } from '../../container/eval/grid';
import { appendResults, readResults, type ResultRow } from '../../container/eval/results';
import { parsePredictions, scorePredictions, selectPredictions } from '../../container/eval/score';

describe('prompts (lmms-eval doc_to_text)', () => {
  it('VideoMME: instruction, question, options, a blank line, the post prompt', () => {
    expect(videoMmePrompt('What colour?', ['A. Red.', 'B. Blue.', 'C. Green.', 'D. Black.'])).toBe(
      'Select the best answer to the following multiple-choice question based on the video and the subtitles. Respond with only the letter (A, B, C, or D) of the correct option.\n' +
        'What colour?\nA. Red.\nB. Blue.\nC. Green.\nD. Black.\n\nAnswer with the option\'s letter from the given choices directly.',
    );
  });
  it('MLVU: the question with "(A) …" options, then "Only give the best option." and the open "Best option: ("', () => {
    expect(mlvuPrompt(mlvuQuestion('What happens?', ['x', 'y']))).toBe('What happens?\n(A) x\n(B) y\nOnly give the best option.\nBest option: (');
  });
  it('LongVideoBench: "A. …" options and the post prompt with its trailing newline', () => {
    expect(longVideoBenchPrompt('Who speaks?', ['a man', 'a woman', 'nobody'])).toBe("Who speaks?\nA. a man\nB. a woman\nC. nobody\nAnswer with the option's letter from the given choices directly.\n");
  });
  it('generation settings: greedy with each task\'s max_new_tokens', () => {
    expect([BENCHMARK_DEFINITIONS.videomme.maxNewTokens, BENCHMARK_DEFINITIONS.mlvu.maxNewTokens, BENCHMARK_DEFINITIONS.longvideobench.maxNewTokens]).toEqual([16, 16, 32]);
  });
});

describe('answer extraction', () => {
  it('VideoMME: prefixes stripped, then the first capital A–D; long letterless answers and no letter give nothing', () => {
    const cases: [string, string][] = [
      ['The best answer is B.', 'B'],
      ['(C) the cat', 'C'],
      ['B) because the man leaves', 'B'],
      ['  D  ', 'D'],
      ['b', ''],
      ['the answer is c', ''],
      ['The answer is: A', 'A'],
      // "A" in "A cat" is the first capital A–D: lmms-eval takes it too.
      ['A cat sits on the mat.', 'A'],
      ['There is nothing in the video that would let me decide this question at all, sorry.', ''],
      ['I think so', ''],
      // The Python list glues two prefix pairs ("Best answer:Best option:"), so "Best option:" is not
      // stripped and the "B" of "Best" is the first capital: lmms-eval reads "Best option: C" as B.
      ['Best option: C', 'B'],
    ];
    for (const [response, letter] of cases) expect([response, extractVideoMme(response).letter]).toEqual([response, letter]);
  });

  it('MLVU: the character before the first ")", else the whole stripped response', () => {
    const cases: [string, string][] = [
      ['A) red', 'A'],
      ['(C) the cat', 'C'],
      ['B) because… (D) no', 'B'],
      [' b) lower case ', 'b'],
      ['A', 'A'],
      ['The best answer is B.', 'The best answer is B.'],
      [') nothing before', ''],
      ['', ''],
    ];
    for (const [response, letter] of cases) expect([response, extractMlvu(response).letter]).toEqual([response, letter]);
  });

  it('LongVideoBench: prefixes stripped, the first capital A–E; no letter draws one from the choices, reproducibly', () => {
    const choices = ['A', 'B', 'C', 'D', 'E'];
    expect(extractLongVideoBench('The best answer is E.', choices, 'q1')).toEqual({ letter: 'E' });
    expect(extractLongVideoBench('(C) the cat', choices, 'q1')).toEqual({ letter: 'C' });
    expect(extractLongVideoBench('Best option: D', choices, 'q1')).toEqual({ letter: 'D' });
    const drawn = extractLongVideoBench('no idea', ['A', 'B', 'C'], 'q7');
    expect(drawn.random).toBe(true);
    expect(['A', 'B', 'C']).toContain(drawn.letter);
    expect(extractLongVideoBench('nothing here', ['A', 'B', 'C'], 'q7')).toEqual(drawn);
    expect(extractLongVideoBench('a lower-case answer with more than ten words in it, so it counts as long', choices, 'x').random).toBe(true);
    // Different ids spread over the choices.
    expect(new Set(Array.from({ length: 40 }, (_, i) => seededChoice(`id-${i}`, ['A', 'B', 'C', 'D']))).size).toBe(4);
  });
});

describe('scores', () => {
  const mlvu = BENCHMARK_DEFINITIONS.mlvu;
  it('MLVU M-Avg is the mean of the per-task accuracies, not the accuracy over questions', () => {
    const s = scorePredictions(mlvu, [
      { id: '1', response: 'A) x', answer: 'A', task: 'count' },
      { id: '2', response: 'B) y', answer: 'A', task: 'count' },
      { id: '3', response: 'C) z', answer: 'C', task: 'plotQA' },
      { id: '4', response: 'D', answer: 'D', task: 'plotQA' },
      { id: '5', response: 'D', answer: 'A', task: 'plotQA' },
      { id: '6', response: 'A', answer: 'A', task: 'plotQA' },
    ]);
    expect(s.tasks).toEqual({ count: { score: 50, correct: 1, total: 2 }, plotQA: { score: 75, correct: 3, total: 4 } });
    expect(s.score).toBeCloseTo(62.5, 10);
    expect(s.correct).toBe(4);
    expect(s.items.map((i) => i.extracted)).toEqual(['A', 'B', 'C', 'D', 'D', 'A']);
  });
  it('VideoMME is the accuracy over every question', () => {
    const s = scorePredictions(BENCHMARK_DEFINITIONS.videomme, [
      { id: '1', response: 'The best answer is B.', answer: 'B', task: 't1' },
      { id: '2', response: 'b', answer: 'B', task: 't2' },
      { id: '3', response: 'C', answer: 'C', task: 't2' },
    ]);
    expect(s.score).toBeCloseTo(200 / 3, 10);
    expect(s.tasks.t2).toEqual({ score: 50, correct: 1, total: 2 });
  });
  it('predictions files: errors name the line and field; several settings need one chosen; ids once each', () => {
    expect(() => parsePredictions('{"id":"1","response":"A","answer":"A"}\n{"id":"2","answer":"B"}\n', 'p.jsonl')).toThrow(/p\.jsonl:2: response: /);
    expect(() => parsePredictions('{"id":"1"', 'p.jsonl')).toThrow(/p\.jsonl:1: not JSON/);
    const two = parsePredictions(['{"id":"1","response":"A","answer":"A","setting":"f8_default_default"}', '{"id":"1","response":"B","answer":"A","setting":"f16_default_default"}'].join('\n'), 'r.jsonl');
    expect(() => selectPredictions(two, 'r.jsonl')).toThrow(/holds 2 settings \(f8_default_default, f16_default_default\): pass --setting NAME/);
    expect(selectPredictions(two, 'r.jsonl', 'f16_default_default').map((p) => p.response)).toEqual(['B']);
    expect(() => selectPredictions(parsePredictions('{"id":1,"response":"A","answer":"A"}\n{"id":"1","response":"B","answer":"A"}', 'd.jsonl'), 'd.jsonl')).toThrow(/id "1" appears more than once/);
  });
});

describe('the sweep grid', () => {
  it('expands frames × rope × pooling, names each setting, and refuses bad values with the flag named', () => {
    const grid = expandGrid(parseFramesList('32,64'), parseRopeList('visual-yarn,off'), parsePoolingList('4,2,8:1,2,2'), false);
    expect(grid.map(settingName)).toEqual([
      'f32_visual-yarn_4-2-8',
      'f64_visual-yarn_4-2-8',
      'f32_visual-yarn_1-2-2',
      'f64_visual-yarn_1-2-2',
      'f32_off_4-2-8',
      'f64_off_4-2-8',
      'f32_off_1-2-2',
      'f64_off_1-2-2',
    ]);
    expect(expandGrid([8], [], [], true).map(settingName)).toEqual(['f8_default_default_time']);
    expect(() => parseFramesList('32,0')).toThrow(/--frames: "0" is not a whole number from 1 to 1024/);
    expect(() => parseRopeList('yarn')).toThrow(/--rope: "yarn" is not one of visual-yarn, language-yarn, position-interpolation, off/);
    expect(() => parsePoolingList('4,2')).toThrow(/--pooling: "4,2" is not K,s_h,s_l/);
    expect(() => parsePoolingList('4,2,99')).toThrow(/--pooling 4,2,99: strideLow/);
  });
});

describe('the results file', () => {
  it('appends rows; a line torn by a crash is skipped and never glued to the next row', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'longsight-results-')), 'r.jsonl');
    const row = (id: string): ResultRow => ({ benchmark: 'mlvu', setting: 's', frames: 8, timeAware: false, id, videoId: 'v', task: 't', choices: ['A', 'B'], answer: 'A', response: 'A', extracted: 'A', correct: true, job: { jobId: 'j', questions: 1 }, at: '' });
    appendResults(file, [row('1'), row('2')]);
    writeFileSync(file, readFileSync(file, 'utf8') + '{"benchmark":"mlvu","setting":"s","id":"3","resp');
    appendResults(file, [row('4')]);
    const read = readResults(file, 'mlvu');
    expect(read.rows.map((r) => r.id)).toEqual(['1', '2', '4']);
    expect(read.skipped).toBe(1);
    expect(readResults(file, 'videomme').rows).toEqual([]);
  });
});
