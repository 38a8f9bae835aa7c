/** The contracts module: valid examples pass, invalid ones fail with an error that names the field. */
import {
  ContractError,
  DEFAULT_SETTINGS,
  InferenceSettingsSchema,
  JobItemSchema,
  AnswerItemSchema,
  PAPER_POOLING,
  SidecarSchema,
  frameKey,
  isUnderFrames,
  isUnderIndex,
  indexProfile,
  extractionProfile,
  ExtractRuntimeConfigSchema,
  EXPORT_COLUMNS,
  EXPORT_DATA_COLUMNS,
  EXPORT_PARTITION_COLUMNS,
  ExportRecordSchema,
  exportKey,
  parseExportKey,
  serializeExport,
  PROFILE_ID_PATTERN,
  isVideoKey,
  jobIdFor,
  manifestKey,
  mergeQuestions,
  parseJobMessage,
  parseOrThrow,
  questionId,
  serializeJobMessage,
  sidecarKeyFor,
  suffixCaseVariants,
  resolveEnvironment,
  type JobMessageInput,
} from '../../lib/contracts';

const PROFILE = indexProfile({ modelId: 'llava-onevision-qwen2-7b-ov', settings: {}, questions: ['Describe this video in detail.'] }).id;
const jobId = jobIdFor({ bucket: 'videos', key: 'a/b.mp4', versionId: 'v1' }, PROFILE);

function validMessage(): JobMessageInput {
  return {
    schemaVersion: 1,
    jobId,
    video: { bucket: 'videos', key: 'a/b.mp4', versionId: 'v1' },
    frames: {
      bucket: 'videos',
      prefix: `frames/${jobId}/`,
      manifestKey: manifestKey(jobId),
      count: 2,
      width: 384,
      height: 384,
      format: 'jpeg',
      timestamps: [0.5, 1.5],
    },
    questions: mergeQuestions(['What happens?']),
    settings: DEFAULT_SETTINGS,
    enqueuedAt: new Date(0).toISOString(),
  };
}

function errorOf(fn: () => unknown): ContractError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ContractError) return e;
    throw e;
  }
  throw new Error('expected a ContractError');
}

describe('job id', () => {
  it('is deterministic in bucket, key, version and index profile', () => {
    expect(jobIdFor({ bucket: 'videos', key: 'a/b.mp4', versionId: 'v1' }, PROFILE)).toBe(jobId);
    expect(jobId).toMatch(/^j-[0-9a-f]{32}$/);
  });
  it('changes with a new version, another key, another bucket or another profile', () => {
    const other = indexProfile({ modelId: 'llava-onevision-qwen2-0.5b-ov', settings: {}, questions: ['Describe this video in detail.'] }).id;
    const ids = new Set([
      jobId,
      jobIdFor({ bucket: 'videos', key: 'a/b.mp4', versionId: 'v2' }, PROFILE),
      jobIdFor({ bucket: 'videos', key: 'a/c.mp4', versionId: 'v1' }, PROFILE),
      jobIdFor({ bucket: 'other', key: 'a/b.mp4', versionId: 'v1' }, PROFILE),
      jobIdFor({ bucket: 'videos', key: 'a/b.mp4', versionId: 'v1' }, other),
    ]);
    expect(ids.size).toBe(5);
  });
  it('falls back to the ETag on unversioned buckets, ignoring quotes; a profile id is required', () => {
    const a = jobIdFor({ bucket: 'v', key: 'k.mp4', versionId: 'null', etag: '"abc"' }, PROFILE);
    expect(a).toBe(jobIdFor({ bucket: 'v', key: 'k.mp4', etag: 'abc' }, PROFILE));
    expect(() => jobIdFor({ bucket: 'v', key: 'k.mp4' }, PROFILE)).toThrow(/neither versionId nor etag/);
    expect(() => jobIdFor({ bucket: 'v', key: 'k.mp4', etag: 'abc' }, 'current')).toThrow(/"current" is not an index profile id/);
  });
});

describe('index profile', () => {
  const base = { modelId: 'llava-onevision-qwen2-7b-ov', settings: { frames: 64 }, questions: ['Describe this video in detail.', 'List the events.'] };
  it('is a short hash, stable: explicit defaults, question order, spacing and repeats do not change it', () => {
    const p = indexProfile(base);
    expect(p.id).toMatch(PROFILE_ID_PATTERN);
    // Pinned (sha256 of {"modelId":"m","questions":["q-8e35c2cd3bf6"],"rule":1,"settings":{}}, computed apart): a change
    // of this value re-indexes every archive (bump PROFILE_RULE_VERSION on purpose, never by accident).
    expect(indexProfile({ modelId: 'm', settings: {}, questions: ['q'] }).id).toBe('p-f9398e462f45');
    expect(indexProfile({ ...base, settings: { ...DEFAULT_SETTINGS, frames: 64 } }).id).toBe(p.id);
    expect(indexProfile({ ...base, questions: ['List  the events.', 'Describe this video in detail.', 'List the events.'] }).id).toBe(p.id);
  });
  it('changes with the model, any setting, or the question set', () => {
    const ids = new Set([
      indexProfile(base).id,
      indexProfile({ ...base, modelId: 'llava-onevision-qwen2-0.5b-ov' }).id,
      indexProfile({ ...base, settings: { frames: 128 } }).id,
      indexProfile({ ...base, settings: { frames: 64, pooling: { groupSize: 1, strideHigh: 2, strideLow: 2 } } }).id,
      indexProfile({ ...base, settings: { frames: 64, rope: { mode: 'off' } } }).id,
      indexProfile({ ...base, questions: ['Describe this video in detail.'] }).id,
    ]);
    expect(ids.size).toBe(6);
  });
  it("of an extraction configuration: its model id, the settings a job gets (extraction.frames) and its questions", () => {
    const config = ExtractRuntimeConfigSchema.parse({ extraction: { frames: 16 }, inference: { maxNewTokens: 32 }, questions: ['What is shown?'], modelId: 'tiny' });
    expect(extractionProfile(config).id).toBe(indexProfile({ modelId: 'tiny', settings: { frames: 16, maxNewTokens: 32 }, questions: ['What is shown?'] }).id);
    expect(extractionProfile(config).settings.frames).toBe(16);
  });
});

describe('answers export', () => {
  const record = {
    job_id: jobId,
    video_uri: 's3://videos/a/b.mp4',
    video_version: 'v:v1',
    video_bytes: 1000,
    video_seconds: 8,
    model_id: 'm',
    question_id: questionId('What happens?'),
    question: 'What happens?',
    answer: 'A dog runs. 🐕',
    answered_at: new Date(0).toISOString(),
    frames: 2,
    frame_timestamps: [0.5, 1.5],
    visual_tokens: 197,
    prompt_tokens: 210,
    generated_tokens: 5,
    rope_scale: 1,
    rope_mode: 'visual-yarn',
    pool_group_size: 4,
    pool_stride_high: 2,
    pool_stride_low: 8,
    fallback: null,
    extract_ms: 100,
    queue_ms: 5,
    frame_load_ms: 10,
    vision_ms: 20,
    prefill_ms: 30,
    decode_ms: 40,
    job_total_ms: 120,
    answer_latency_ms: 40,
    gpu_seconds: 0.12,
    cost_usd: null,
    profile: PROFILE,
    dt: '1970-01-01',
  };
  it('has one column per record field, in table order: data columns, then the partition columns profile and dt', () => {
    expect(EXPORT_COLUMNS.map((c) => c.name)).toEqual(Object.keys(ExportRecordSchema.shape));
    expect(EXPORT_PARTITION_COLUMNS.map((c) => c.name)).toEqual(['profile', 'dt']);
    expect(EXPORT_DATA_COLUMNS.map((c) => c.name)).not.toContain('profile');
    for (const c of EXPORT_COLUMNS) expect(c.name).toMatch(/^[a-z][a-z0-9_]*$/);
  });
  it('writes one JSON line per record under index/profile=…/dt=…/<jobId>.jsonl, and refuses a bad record naming the field', () => {
    const key = exportKey(PROFILE, '1970-01-01', jobId);
    expect(key).toBe(`index/profile=${PROFILE}/dt=1970-01-01/${jobId}.jsonl`);
    expect(parseExportKey(key)).toEqual({ profile: PROFILE, dt: '1970-01-01', jobId });
    expect(parseExportKey(`frames/${jobId}/manifest.json`)).toBeUndefined();
    expect(isUnderIndex(key)).toBe(true);
    const body = serializeExport([record, { ...record, question_id: questionId('Who?'), question: 'Who?' }]);
    expect(body.split('\n')).toHaveLength(3);
    expect(JSON.parse(body.split('\n')[0])).toEqual(record);
    expect(() => serializeExport([{ ...record, frames: -1 }])).toThrow(/frames/);
  });
});

describe('S3 layout', () => {
  it('puts frames and the manifest under frames/<jobId>/ with fixed per-index keys', () => {
    expect(manifestKey(jobId)).toBe(`frames/${jobId}/manifest.json`);
    expect(frameKey(jobId, 7, 'jpg')).toBe(`frames/${jobId}/frame-00007.jpg`);
    expect(isUnderFrames(frameKey(jobId, 0, 'png'))).toBe(true);
    expect(isUnderIndex(frameKey(jobId, 0, 'png'))).toBe(false);
  });
  it('recognises video suffixes in any case and derives the sidecar key', () => {
    expect(isVideoKey('x/Clip.MP4')).toBe(true);
    expect(isVideoKey('x/clip.WebM')).toBe(true);
    expect(isVideoKey('x/clip.questions.json')).toBe(false);
    expect(isVideoKey('x/clip.mp3')).toBe(false);
    expect(sidecarKeyFor('talks/a talk.mov')).toBe('talks/a talk.questions.json');
    expect(sidecarKeyFor('noext')).toBe('noext.questions.json');
    const variants = suffixCaseVariants();
    expect(variants).toEqual(expect.arrayContaining(['.mp4', '.MP4', '.Mp4', '.mP4', '.webm', '.WEBM', '.wEbM', '.m4v', '.ts', '.Ts', '.m2TS', '.MtS']));
    // Every spelling a user can type: 2^letters per suffix, each once.
    expect(variants).toHaveLength(4 + 8 + 8 + 16 + 8 + 4 + 4 + 8 + 8);
    expect(new Set(variants).size).toBe(variants.length);
    for (const v of variants) expect(isVideoKey(`x/clip${v}`)).toBe(true);
  });
});

describe('questions', () => {
  it('normalises whitespace, deduplicates and gives stable ids', () => {
    const qs = mergeQuestions(['What  happens?', 'Who is there?'], ['What happens? ', 'New one']);
    expect(qs.map((q) => q.text)).toEqual(['What happens?', 'Who is there?', 'New one']);
    expect(qs[0].id).toBe(questionId('What happens?'));
    expect(qs[0].id).toMatch(/^q-[0-9a-f]{12}$/);
  });
  it('keeps line breaks (a multiple-choice prompt is several lines), collapses other whitespace', () => {
    const [q] = mergeQuestions([' Which  one?\r\nA.\tred \nB. blue\n']);
    expect(q.text).toBe('Which one?\nA. red \nB. blue\n');
    expect(q.id).not.toBe(questionId('Which one? A. red B. blue'));
    expect(() => mergeQuestions([' \n \n'])).toThrow(/question is empty/);
  });
  it('rejects empty, overlong and control-character questions', () => {
    expect(() => mergeQuestions([' '])).toThrow(/question is empty/);
    expect(() => mergeQuestions(['x'.repeat(2001)])).toThrow(/longer than 2000/);
    expect(() => mergeQuestions(['a\u0007b'])).toThrow(/control characters/);
  });
  it('validates a sidecar and names the bad field', () => {
    expect(parseOrThrow(SidecarSchema, { questions: ['Q?'], frames: 128 }, 'sidecar').frames).toBe(128);
    const e = errorOf(() => parseOrThrow(SidecarSchema, { questions: ['ok'], frames: 5000 }, 'sidecar'));
    expect(e.message).toMatch(/frames: Too big/);
    expect(errorOf(() => parseOrThrow(SidecarSchema, { question: [] }, 'sidecar')).message).toMatch(/question: unknown key "question"/);
  });
});

describe('inference settings', () => {
  it('defaults to the paper: 64 frames, K=4 s_h=2 s_l=8, visual-yarn with L_v=6272, alpha 1, beta 32, no temperature', () => {
    expect(DEFAULT_SETTINGS.frames).toBe(64);
    expect(DEFAULT_SETTINGS.pooling).toEqual(PAPER_POOLING);
    expect(DEFAULT_SETTINGS.rope).toMatchObject({ mode: 'visual-yarn', visualContextWindow: 6272, alpha: 1, beta: 32, attentionTemperature: false, ramp: 'ratio' });
    expect(DEFAULT_SETTINGS.sampling.temperature).toBe(0);
  });
  it('names the bad field', () => {
    const e = errorOf(() => parseOrThrow(InferenceSettingsSchema, { pooling: { groupSize: 0, strideHigh: 2, strideLow: 8 } }, 'settings'));
    expect(e.issues[0].path).toBe('pooling.groupSize');
    const e2 = errorOf(() => parseOrThrow(InferenceSettingsSchema, { rope: { alpha: 40, beta: 32 } }, 'settings'));
    expect(e2.message).toMatch(/rope.beta: beta must be greater than alpha/);
    const e3 = errorOf(() => parseOrThrow(InferenceSettingsSchema, { rope: { mode: 'ntk' } }, 'settings'));
    expect(e3.message).toMatch(/rope.mode/);
  });
});

describe('SQS job message', () => {
  it('round-trips through serialize/parse with schemaVersion 1', () => {
    const body = serializeJobMessage(validMessage());
    const msg = parseJobMessage(body);
    expect(msg.schemaVersion).toBe(1);
    expect(msg.kind).toBe('extracted');
    expect(msg.frames.timestamps).toEqual([0.5, 1.5]);
  });
  it('rejects a body that is not JSON, a wrong version, and a bad field by name', () => {
    expect(() => parseJobMessage('{nope')).toThrow(/not JSON/);
    expect(() => parseJobMessage(JSON.stringify({ ...validMessage(), schemaVersion: 2 }))).toThrow(/schemaVersion/);
    const bad = validMessage();
    bad.frames.timestamps = [];
    expect(() => parseJobMessage(JSON.stringify(bad))).toThrow(/frames\.timestamps/);
    expect(() => parseJobMessage(JSON.stringify({ ...validMessage(), jobId: 'x' }))).toThrow(/jobId must look like/);
  });
});

describe('DynamoDB items', () => {
  const now = new Date(0).toISOString();
  it('accepts a job item and an answer item and rejects bad statuses', () => {
    const job = {
      jobId,
      videoUri: 's3://videos/a/b.mp4',
      video: { bucket: 'videos', key: 'a/b.mp4', versionId: 'v1' },
      status: 'QUEUED',
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      questions: mergeQuestions(['Q?']),
      settings: DEFAULT_SETTINGS,
    };
    expect(JobItemSchema.parse(job).timings).toEqual({});
    expect(() => parseOrThrow(JobItemSchema, { ...job, status: 'DONEISH' }, 'job item')).toThrow(/status/);
    const answer = {
      jobId,
      questionId: questionId('Q?'),
      videoUri: 's3://videos/a/b.mp4',
      question: 'Q?',
      answer: 'A.',
      tokens: { prompt: 10, generated: 2 },
      latencyMs: 5,
      answeredAt: now,
      modelId: 'tiny',
    };
    expect(AnswerItemSchema.parse(answer).answer).toBe('A.');
    expect(() => parseOrThrow(AnswerItemSchema, { ...answer, latencyMs: -1 }, 'answer item')).toThrow(/latencyMs/);
  });
});

describe('environment configuration', () => {
  const base = { gpu: {}, model: { artifactUri: 's3://models-bucket/llava/' } };
  it('fills defaults', () => {
    const env = resolveEnvironment({ dev: base }, 'dev');
    expect(env.gpu.instanceTypes).toEqual(['g5.xlarge']);
    expect(env.queue.maxReceiveCount).toBe(3);
    expect(env.extraction.frames).toBe(64);
  });
  it('gives jobs the extraction frame count, and rejects an inference.frames that disagrees', () => {
    const env = resolveEnvironment({ prod: { ...base, extraction: { frames: 256 } } }, 'prod');
    expect(env.inference.frames).toBe(256);
    expect(resolveEnvironment({ prod: { ...base, extraction: { frames: 256 }, inference: { frames: 256 } } }, 'prod').inference.frames).toBe(256);
    expect(() => resolveEnvironment({ prod: { ...base, extraction: { frames: 256 }, inference: { frames: 128 } } }, 'prod')).toThrow(
      /environments\.prod\.inference\.frames: must equal extraction\.frames \(256\) or be left out/,
    );
  });
  it('names an unknown environment and the allowed ones', () => {
    expect(() => resolveEnvironment({ dev: base, prod: base }, 'staging')).toThrow(/unknown environment "staging": allowed are dev, prod/);
    expect(() => resolveEnvironment({ dev: base }, undefined)).toThrow(/pass -c env=NAME/);
  });
  it('names the key and what is allowed for a bad value', () => {
    expect(() => resolveEnvironment({ prod: { ...base, gpu: { maxWorkers: 0 } } }, 'prod')).toThrow(/environments\.prod\.gpu\.maxWorkers: Too small: expected number to be >=1/);
    expect(() => resolveEnvironment({ prod: { ...base, gpu: { instanceTypes: ['t3.micro'] } } }, 'prod')).toThrow(/environments\.prod\.gpu\.instanceTypes\[0\]: Invalid option: expected one of "g4dn.xlarge"/);
    expect(() => resolveEnvironment({ prod: { ...base, model: { artifactUri: 'http://x' } } }, 'prod')).toThrow(/environments\.prod\.model\.artifactUri: must be an S3 URI/);
    expect(() => resolveEnvironment({ prod: { ...base, gpuz: {} } }, 'prod')).toThrow(/environments\.prod\.gpuz: unknown key "gpuz"/);
  });
});
