/** The extraction Lambda's pure parts: event parsing, sampling, file sniffing, probe parsing, reasons, job settings. */
import { ExtractRuntimeConfigSchema } from '../../lib/contracts/env-config';
import { questionId } from '../../lib/contracts/questions';
import { PAPER_POOLING } from '../../lib/contracts/settings';
import { decodeS3Key, parseS3Event, skipReason } from '../../lambda/extract-frames/s3-event';
import { dropDuplicateFrames, linspaceIndices, planSamples } from '../../lambda/extract-frames/frame-sampler';
import { chooseStrategy, estimateCosts } from '../../lambda/extract-frames/extraction-strategy';
import { keyframeSpacing, packetsToRead } from '../../lambda/extract-frames/keyframes';
import { sniff } from '../../lambda/extract-frames/file-signature';
import { parseProbe, rotationOf } from '../../lambda/extract-frames/probe';
import { checkProbe, checkSize, formatDuration, PermanentInputError, reasonForProbeFailure } from '../../lambda/extract-frames/failure-reasons';
import { contiguousRuns, decodeAllFrames, extractByPasses, extractFrames, ffmpegCommand, frameFilter, isTransientFfmpegError, pickExpression, rotationFilters } from '../../lambda/extract-frames/frame-extractor';
import { resolveBinaries } from '../../lambda/extract-frames/binaries';
import { RECIPES, videoFiles } from '../support/videos';
import { planJob } from '../../lambda/extract-frames/job-settings';
import { parseSidecar } from '../../lambda/extract-frames/sidecar';
import { encodeEventKey, s3Event } from '../support/s3-event';
import { mapLimit } from '../../lib/map-limit';

describe('S3 event', () => {
  const record = (key: string, extra: Record<string, unknown> = {}, eventName = 'ObjectCreated:Put') => ({
    eventSource: 'aws:s3',
    eventName,
    s3: { bucket: { name: 'b' }, object: { key, size: 10, eTag: 'abc', ...extra } },
  });

  test('keys are form-decoded: + is a space, %2B a plus, UTF-8 escapes', () => {
    expect(decodeS3Key('my+videos/caf%C3%A9+%2B1.mp4')).toBe('my videos/café +1.mp4');
    const key = 'a b/ü+(1)/日本.mp4';
    expect(decodeS3Key(encodeEventKey(key))).toBe(key);
  });

  test('several records, version ids ("null" on unversioned buckets means none), quoted eTags', () => {
    const parsed = parseS3Event({ Records: [record('a.mp4', { versionId: 'v1' }), record('b.mp4', { versionId: 'null', eTag: '"q"' }), record('c.mp4')] });
    expect(parsed.objects.map((o) => [o.key, o.versionId, o.etag])).toEqual([
      ['a.mp4', 'v1', 'abc'],
      ['b.mp4', undefined, 'q'],
      ['c.mp4', undefined, 'abc'],
    ]);
    expect(parsed.unusable).toEqual([]);
  });

  test('the test event, removals and foreign records are not processed', () => {
    expect(parseS3Event({ Service: 'Amazon S3', Event: 's3:TestEvent' })).toEqual({ objects: [], unusable: [] });
    const parsed = parseS3Event({ Records: [record('a.mp4', {}, 'ObjectRemoved:Delete'), { eventSource: 'aws:sqs' }, record('%E0%A4%A.mp4')] });
    expect(parsed.objects).toEqual([]);
    expect(parsed.unusable.map((u) => u.why)).toEqual([
      expect.stringMatching(/ObjectRemoved:Delete is not an ObjectCreated event/),
      expect.stringMatching(/not an S3 event record/),
      expect.stringMatching(/not valid URL encoding/),
    ]);
  });

  test('the test helper builds what S3 sends', () => {
    const e = s3Event({ bucket: 'b', key: 'x y.mp4', size: 3, etag: '"e"', versionId: 'v' });
    expect(parseS3Event(e).objects[0]).toMatchObject({ bucket: 'b', key: 'x y.mp4', size: 3, etag: 'e', versionId: 'v', eventName: 'ObjectCreated:Put' });
  });

  test('what is skipped', () => {
    expect(skipReason('frames/j-1/frame-00000.jpg')).toMatch(/frames/);
    expect(skipReason('frames/j-1/x.mp4')).toMatch(/frames/);
    expect(skipReason('talks/a.questions.json')).toMatch(/sidecar/);
    expect(skipReason('talks/a.txt')).toMatch(/not a video suffix/);
    expect(skipReason('talks/')).toMatch(/folder/);
    expect(skipReason('talks/A.MP4')).toBeUndefined();
    expect(skipReason('talks/a.webm')).toBeUndefined();
  });
});

describe('frame sampler', () => {
  test('matches numpy.linspace(0, F-1, N, dtype=int)', () => {
    // Values printed by numpy 2.4.6: np.linspace(0, 99, 8, dtype=int), (0, 5999, 16), (0, 9, 4).
    expect(linspaceIndices(100, 8)).toEqual([0, 14, 28, 42, 56, 70, 84, 99]);
    expect(linspaceIndices(6000, 16)).toEqual([0, 399, 799, 1199, 1599, 1999, 2399, 2799, 3199, 3599, 3999, 4399, 4799, 5199, 5599, 5999]);
    expect(linspaceIndices(10, 4)).toEqual([0, 3, 6, 9]);
    expect(linspaceIndices(90000, 1)).toEqual([0]);
  });

  test('fewer frames than requested: each frame once', () => {
    expect(linspaceIndices(5, 64)).toEqual([0, 1, 2, 3, 4]);
    expect(linspaceIndices(1, 1024)).toEqual([0]);
    // linspace with N slightly below F repeats nothing either.
    const idx = linspaceIndices(70, 64);
    expect(new Set(idx).size).toBe(idx.length);
    expect(idx).toHaveLength(64);
  });

  test('rejects nonsense', () => {
    expect(() => linspaceIndices(0, 4)).toThrow(/positive/);
    expect(() => linspaceIndices(10, 0)).toThrow(/positive/);
    expect(() => planSamples({ durationSeconds: 0 }, 4)).toThrow(/duration/);
  });

  test('seek points: frame start times, half a frame early', () => {
    const s = planSamples({ durationSeconds: 4, frameCount: 100, frameRate: 25 }, 8);
    expect(s.map((p) => p.frameIndex)).toEqual([0, 14, 28, 42, 56, 70, 84, 99]);
    expect(s[1].time).toBeCloseTo(14 / 25, 9);
    expect(s[1].seek).toBeCloseTo(14 / 25 - 0.02, 9);
    expect(s[0].seek).toBe(0);
    // Unknown frame count: the duration at the frame rate.
    expect(planSamples({ durationSeconds: 10, frameRate: 10 }, 3).map((p) => p.frameIndex)).toEqual([0, 49, 99]);
  });

  test('seek or pass by estimated cost (costs given here: 1 ms per frame of 1 MP, 10 ms per seek)', () => {
    const costs = { decodeMsPerFrame: 0, decodeMsPerMegapixel: 1, seekFixedMs: 4, seekFixedMsPerMegapixel: 6 };
    // 1000 frames of 1000x1000 at 25 fps (40 s), a keyframe every 4 s = 100 frames, 2 cores.
    const video = { frameCount: 1000, frameCountExact: true, durationSeconds: 40, frameRate: 25, width: 1000, height: 1000, keyframeSeconds: 4, cores: 2 };
    // A seek: 10 + (100/2 + 1) = 61 ms per sample. A pass: 2 runs x (10 + 50) + 1000 frames = 1120 ms.
    expect(estimateCosts({ ...video, n: 10 }, costs)).toEqual({ seekMs: 610, passMs: 1120, sampleSpacingFrames: 100, keyframeIntervalFrames: 100 });
    expect(chooseStrategy({ ...video, n: 10 }, costs)).toMatchObject({ mode: 'seek' });
    expect(chooseStrategy({ ...video, n: 17 }, costs)).toMatchObject({ mode: 'seek' }); // 1037 < 1120
    expect(chooseStrategy({ ...video, n: 19 }, costs)).toMatchObject({ mode: 'pass', segments: 2 }); // 1159 > 1120
    // A short keyframe interval makes seeks cheap again: 10 + 6 = 16 ms each, 100 samples = 1600 > 2*15 + 1000.
    expect(chooseStrategy({ ...video, n: 100, keyframeSeconds: 0.4 }, costs)).toMatchObject({ mode: 'pass' });
    expect(chooseStrategy({ ...video, n: 50, keyframeSeconds: 0.4 }, costs)).toMatchObject({ mode: 'seek' });
    // No more frames than requested: every frame.
    expect(chooseStrategy({ ...video, n: 1000 }, costs)).toEqual({ mode: 'all' });
    // With the measured constants: the benchmark's 20-minute 720p file (keyframe every 10 s) is
    // sampled by seeking at 64 frames and by passes at 256; its 60-minute 1080p file by seeking at both.
    const bench720 = { frameCount: 30000, frameCountExact: true, durationSeconds: 1200, frameRate: 25, width: 1280, height: 720, keyframeSeconds: 10, cores: 2 };
    const bench1080 = { ...bench720, frameCount: 90000, durationSeconds: 3600, width: 1920, height: 1080 };
    expect([64, 256].map((n) => chooseStrategy({ ...bench720, n }).mode)).toEqual(['seek', 'pass']);
    expect([64, 256].map((n) => chooseStrategy({ ...bench1080, n }).mode)).toEqual(['seek', 'seek']);
    expect(chooseStrategy({ ...video, frameCountExact: false, frameCount: 30, n: 64 }, costs)).toEqual({ mode: 'all' });
    // Unknown keyframe interval: nothing to decode before a sample is assumed (seeking, the old default).
    expect(estimateCosts({ ...video, n: 10, keyframeSeconds: undefined }, costs).seekMs).toBe(10 * 11);
  });

  test('keyframe spacing from the first packets', () => {
    const packets = (keys: number[], n: number) => Array.from({ length: n }, (_, i) => ({ pts_time: (i / 25).toFixed(6), flags: keys.includes(i) ? 'K__' : '___' }));
    expect(keyframeSpacing(packets([0, 50, 100], 120))).toEqual({ seconds: 2, keyframes: 3, packets: 120 });
    expect(keyframeSpacing(packets([0], 250))).toEqual({ atLeastSeconds: 249 / 25, keyframes: 1, packets: 250 });
    expect(keyframeSpacing([])).toEqual({ atLeastSeconds: 0, keyframes: 0, packets: 0 });
    expect(packetsToRead(25)).toBe(525);
    expect(packetsToRead(240)).toBe(900);
    expect(packetsToRead(undefined)).toBe(630);
  });

  test('samples that decoded to the same frame are dropped', () => {
    const out = dropDuplicateFrames([{ timestamp: 0.4, id: 'b' }, { timestamp: 0, id: 'a' }, { timestamp: 0.4, id: 'c' }, { timestamp: 0.8, id: 'd' }]);
    expect(out.map((f) => f.id)).toEqual(['a', 'b', 'd']);
  });
});

describe('file signature', () => {
  const bytes = (...b: number[]) => Buffer.from(b);
  test.each([
    [Buffer.alloc(0), 'empty'],
    [Buffer.concat([bytes(0, 0, 0, 0x20), Buffer.from('ftypisom')]), 'iso-bmff'],
    [Buffer.concat([bytes(0, 0, 0, 8), Buffer.from('mdat')]), 'iso-bmff'],
    [bytes(0x1a, 0x45, 0xdf, 0xa3, 1), 'matroska'],
    [Buffer.from('RIFF\0\0\0\0AVI LIST'), 'avi'],
    [bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), 'png'],
    [bytes(0xff, 0xd8, 0xff, 0xe0), 'jpeg'],
    [Buffer.from('GIF89a'), 'gif'],
    [Buffer.from('%PDF-1.7'), 'pdf'],
    [bytes(0xe7, 0x07, 0x43, 0x45), 'unknown'],
  ])('%#', (head, kind) => {
    expect(sniff(head).kind).toBe(kind);
  });
});

describe('probe parsing', () => {
  test('rotation: display matrix (counter-clockwise) wins over the rotate tag (clockwise)', () => {
    expect(rotationOf({ side_data_list: [{ side_data_type: 'Display Matrix', rotation: -90 }] })).toBe(90);
    expect(rotationOf({ side_data_list: [{ side_data_type: 'Display Matrix', rotation: 90 }] })).toBe(270);
    expect(rotationOf({ side_data_list: [{ side_data_type: 'Display Matrix', rotation: 180 }], tags: { rotate: '90' } })).toBe(180);
    expect(rotationOf({ tags: { rotate: '90' } })).toBe(90);
    expect(rotationOf({ tags: { rotate: '-90' } })).toBe(270);
    expect(rotationOf({})).toBe(0);
  });

  test('stream, display size, frame count (exact from the container, else estimated)', () => {
    const p = parseProbe({
      format: { format_name: 'matroska,webm', duration: '3.000000', start_time: '0.000000', size: '1000' },
      streams: [
        { index: 0, codec_type: 'audio', codec_name: 'opus' },
        { index: 1, codec_type: 'video', codec_name: 'vp9', width: 1920, height: 1080, avg_frame_rate: '25/1', side_data_list: [{ side_data_type: 'Display Matrix', rotation: -90 }] },
      ],
    });
    expect(p.video).toMatchObject({ index: 1, codec: 'vp9', width: 1920, height: 1080, rotation: 90, displayWidth: 1080, displayHeight: 1920, frameRate: 25, frameCount: 75, frameCountExact: false, durationSeconds: 3 });
    expect(p.otherStreams).toEqual([{ type: 'audio', codec: 'opus' }]);
    const mp4 = parseProbe({ format: { format_name: 'mov,mp4', duration: '2.64' }, streams: [{ index: 0, codec_type: 'video', codec_name: 'h264', width: 2, height: 2, avg_frame_rate: '0/0', r_frame_rate: '25/1', nb_frames: '30', duration: '2.64' }] });
    expect(mp4.video).toMatchObject({ frameCount: 30, frameCountExact: true, frameRate: 25 });
  });

  test('cover art is not a video track', () => {
    const p = parseProbe({ format: { format_name: 'mov,mp4' }, streams: [{ index: 0, codec_type: 'video', codec_name: 'mjpeg', width: 10, height: 10, disposition: { attached_pic: 1 } }] });
    expect(() => checkProbe(p, { maxDurationSeconds: 10, maxWidth: 100, maxHeight: 100 }, sniff(Buffer.from('\0\0\0\x20ftypisom')))).toThrow(/only a cover picture/);
  });
});

describe('failure reasons', () => {
  const mp4 = sniff(Buffer.from('\0\0\0\x20ftypisom'));
  const limits = { maxDurationSeconds: 3600, maxWidth: 1920, maxHeight: 1080, maxBytes: 100 };
  const video = (w: number, h: number, duration?: number, rotation = 0) =>
    parseProbe({ format: { format_name: 'mov,mp4', duration: duration?.toString() }, streams: [{ index: 0, codec_type: 'video', codec_name: 'h264', width: w, height: h, avg_frame_rate: '25/1', tags: { rotate: String(rotation) } }] });

  test('limits', () => {
    expect(() => checkSize(101, limits)).toThrow('file size 101 bytes exceeds the limit of 100 bytes');
    expect(() => checkSize(0, limits)).toThrow('empty file (0 bytes)');
    expect(() => checkProbe(video(1920, 1080, 7200), limits, mp4)).toThrow('duration 2:00:00 exceeds the limit of 1:00:00');
    expect(() => checkProbe(video(3840, 2160, 10), limits, mp4)).toThrow('resolution exceeds limit: 3840x2160 is larger than 1920x1080');
    // Portrait within the limit either way round.
    expect(checkProbe(video(1920, 1080, 10, 90), limits, mp4)).toEqual({ durationSeconds: 10 });
    expect(() => checkProbe(video(320, 240, 0), limits, mp4)).toThrow(/^duration 0/);
    expect(() => checkProbe(video(320, 240, undefined), limits, mp4)).toThrow(/^duration 0/);
  });

  test('what ffprobe said, in words', () => {
    expect(reasonForProbeFailure('[mov] moov atom not found\nx.mp4: Invalid data found when processing input', mp4)).toMatch(/^truncated file: moov atom missing/);
    expect(reasonForProbeFailure('moov atom not found', sniff(Buffer.from([1, 2, 3, 4])), Buffer.from([1, 2, 3, 4]))).toBe('file is not a video (unrecognised content: first bytes 01 02 03 04)');
    expect(reasonForProbeFailure('EBML header parsing failed', sniff(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])))).toMatch(/corrupt Matroska/);
    const png = parseProbe({ format: { format_name: 'png_pipe' }, streams: [{ index: 0, codec_type: 'video', codec_name: 'png', width: 2, height: 2 }] });
    expect(() => checkProbe(png, limits, mp4)).toThrow('file is not a video (PNG image)');
    const audio = parseProbe({ format: { format_name: 'mov,mp4', duration: '2' }, streams: [{ index: 0, codec_type: 'audio', codec_name: 'aac' }] });
    expect(() => checkProbe(audio, limits, mp4)).toThrow(new PermanentInputError('no video stream (the file has only: audio aac)'));
    expect(formatDuration(3725)).toBe('1:02:05');
  });

  test('network failures are transient, bad data is not', () => {
    expect(isTransientFfmpegError('Server returned 503 Service Unavailable')).toBe(true);
    expect(isTransientFfmpegError('Server returned 403 Forbidden (access denied)')).toBe(true);
    expect(isTransientFfmpegError('Connection refused')).toBe(true);
    expect(isTransientFfmpegError('Invalid data found when processing input')).toBe(false);
    expect(isTransientFfmpegError('Server returned 404 Not Found')).toBe(false);
  });
});

describe('ffmpeg command line', () => {
  const req = { ffmpeg: 'ffmpeg', input: 'v.mp4', streamIndex: 1, rotation: 90 as const, width: 360, height: 640, size: 384, format: 'png' as const, jpegQuality: 95 };

  test('rgb24 at the stream size (no resize in ffmpeg), then the rotation on the RGB frame', () => {
    expect(frameFilter(90)).toBe('showinfo=checksum=0,scale,format=rgb24,transpose=clock');
    expect(frameFilter(0)).toBe('showinfo=checksum=0,scale,format=rgb24');
    expect(rotationFilters(180)).toEqual(['hflip', 'vflip']);
    expect(rotationFilters(270)).toEqual(['transpose=cclock']);
    expect(rotationFilters(0)).toEqual([]);
  });

  test('a seek: -ss before -i, one frame; a pass: select of the first frame at or after each time, stopping after the last', () => {
    const seek = ffmpegCommand(req, { seek: 12.5, maxFrames: 1 });
    expect(seek.join(' ')).toMatch(/-threads 1 -protocol_whitelist file -ss 12\.500000 -i v\.mp4 -map 0:1 -an -sn -dn -frames:v 1 -vf showinfo=checksum=0,scale,format=rgb24,transpose=clock -vsync 0 -f rawvideo -pix_fmt rgb24 pipe:1$/);
    // The sniffed container fixes the demuxer; a presigned URL may use only https over tls/tcp.
    expect(ffmpegCommand({ ...req, demuxer: 'mov', input: 'https://b.s3/x?sig' }, { seek: 1 }).join(' ')).toMatch(/-protocol_whitelist https,tls,tcp -rw_timeout 30000000 -f mov -ss 1\.000000 -i https:\/\/b\.s3\/x\?sig /);
    const pass = ffmpegCommand(req, { seek: 10, pick: [10, 10.5, 12.25], maxFrames: 3 });
    expect(pass[pass.indexOf('-vf') + 1]).toBe("select='isnan(prev_t)+(gte(t,0.500000)*lt(prev_t,0.500000)+gte(t,2.250000)*lt(prev_t,2.250000))',showinfo=checksum=0,scale,format=rgb24,transpose=clock");
    expect(pass.slice(pass.indexOf('-frames:v'), pass.indexOf('-frames:v') + 2)).toEqual(['-frames:v', '3']);
    // From the start: no -ss at all.
    expect(ffmpegCommand(req, {})).not.toContain('-ss');
    expect(ffmpegCommand({ ...req, input: 'https://b.s3/x?sig' }, {})).toEqual(expect.arrayContaining(['-rw_timeout', '30000000']));
    expect(contiguousRuns(10, 3)).toEqual([{ start: 0, end: 3 }, { start: 3, end: 6 }, { start: 6, end: 10 }]);
    expect(contiguousRuns(2, 4)).toEqual([{ start: 0, end: 1 }, { start: 1, end: 2 }]);
  });
});

describe('job settings and sidecar', () => {
  const config = ExtractRuntimeConfigSchema.parse({ extraction: { frames: 64 }, inference: { maxNewTokens: 128 }, questions: ['Describe this video in detail.', 'List the events.'] });

  test('defaults: the environment questions and settings', () => {
    const p = planJob(config);
    expect(p.frames).toBe(64);
    expect(p.questions.map((q) => q.text)).toEqual(['Describe this video in detail.', 'List the events.']);
    expect(p.settings).toMatchObject({ frames: 64, maxNewTokens: 128, pooling: PAPER_POOLING });
  });

  test('sidecar: extra questions deduplicated with stable ids, overrides', () => {
    const s = parseSidecar(JSON.stringify({ questions: ['List   the events.', 'Who speaks?'], frames: 256, pooling: { groupSize: 1, strideHigh: 2, strideLow: 2 } }), 'a.questions.json');
    const p = planJob(config, s);
    expect(p.questions).toEqual([
      { id: questionId('Describe this video in detail.'), text: 'Describe this video in detail.' },
      { id: questionId('List the events.'), text: 'List the events.' },
      { id: questionId('Who speaks?'), text: 'Who speaks?' },
    ]);
    expect(p.frames).toBe(256);
    expect(p.settings).toMatchObject({ frames: 256, pooling: { groupSize: 1, strideHigh: 2, strideLow: 2 }, maxNewTokens: 128 });
  });

  test('sidecar: only its own questions (defaultQuestions false), greedy sampling and time-aware prompts for this video', () => {
    const s = parseSidecar(
      JSON.stringify({ questions: ['Which?\nA. x\nB. y\nAnswer with the letter.\n'], defaultQuestions: false, sampling: { temperature: 0 }, timeAwarePrompt: true, maxNewTokens: 16, rope: { mode: 'off' } }),
      'b.questions.json',
    );
    const p = planJob({ ...config, inference: { ...config.inference, sampling: { temperature: 0.7, topP: 1, seed: 3 } } }, s);
    // Line breaks are the question's: a benchmark prompt keeps its lines (and its trailing newline).
    expect(p.questions).toEqual([{ id: questionId('Which?\nA. x\nB. y\nAnswer with the letter.\n'), text: 'Which?\nA. x\nB. y\nAnswer with the letter.\n' }]);
    expect(p.settings).toMatchObject({ timeAwarePrompt: true, maxNewTokens: 16, sampling: { temperature: 0, topP: 1, seed: 0 }, rope: { mode: 'off' } });
    expect(planJob(config).settings.timeAwarePrompt).toBe(false);
    expect(() => planJob(config, parseSidecar('{"defaultQuestions": false}', 'c.questions.json'), 'c.questions.json')).toThrow(/c\.questions\.json: defaultQuestions is false and the sidecar asks no questions/);
    expect(() => parseSidecar('{"timeAwarePrompt": "yes"}', 'd.questions.json')).toThrow(/timeAwarePrompt/);
  });

  test('a bad sidecar names the field', () => {
    expect(() => parseSidecar('{"questions": ["ok", ""]}', 'k.questions.json')).toThrow(/sidecar k\.questions\.json: questions\[1\]: question is empty/);
    expect(() => parseSidecar('{"frames": 0}', 'k.questions.json')).toThrow(/frames:/);
    expect(() => parseSidecar('{"framez": 3}', 'k.questions.json')).toThrow(/framez/);
    expect(() => parseSidecar('nope', 'k.questions.json')).toThrow(/not valid JSON/);
    const many = parseSidecar(JSON.stringify({ questions: Array.from({ length: 63 }, (_, i) => `q${i}?`) }), 'k.questions.json');
    expect(() => planJob(config, many, 'k.questions.json')).toThrow(/k\.questions\.json: too many questions: 65/);
  });
});

describe('mapLimit (the extractor\'s and the frame store\'s bounded concurrency)', () => {
  const tick = () => new Promise((r) => setTimeout(r, 5));

  test('results in input order, at most `limit` in flight', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n, i) => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, n * 3));
      running--;
      return `${i}:${n}`;
    });
    expect(out).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3']);
    expect(peak).toBe(2);
  });

  test('after a failure no new item starts, running ones finish before the first error is thrown', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const run = mapLimit([0, 1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      await tick();
      if (n === 0) throw new Error('first');
      if (n === 1) {
        await tick();
        finished.push(n);
        throw new Error('second');
      }
      finished.push(n);
    });
    await expect(run).rejects.toThrow('first');
    expect(started).toEqual([0, 1]);
    expect(finished).toEqual([1]);
  });
});

describe('decodeAllFrames (one sequential pass)', () => {
  test('a stream with far more frames than the container stated reports its real count instead of frames from its start', async () => {
    const file = (await videoFiles({ h264Mp4: RECIPES.h264Mp4 })).h264Mp4; // 100 frames
    const req = { ffmpeg: resolveBinaries().ffmpeg, input: file, streamIndex: 0, rotation: 0 as const, width: 320, height: 240, size: 32, format: 'png' as const, jpegQuality: 90, choose: linspaceIndices };
    // 4 requested: up to 16 frames are kept, so 100 frames overflow.
    expect(await decodeAllFrames({ ...req, maxFrames: 4 })).toEqual({ frames: [], missing: [], overflowFrames: 100 });
    // 32 requested: all 100 fit under the cap of 128, and linspace picks 32 of them.
    const all = await decodeAllFrames({ ...req, maxFrames: 32 });
    expect(all.overflowFrames).toBeUndefined();
    expect(all.frames.map((f) => f.timestamp)).toEqual(linspaceIndices(100, 32).map((i) => i / 25));
  }, 60_000);
});

describe('seeks and passes decode the same frames', () => {
  test('per-sample seeks and two passes give identical timestamps and identical frame bytes', async () => {
    const file = (await videoFiles({ h264Mp4: RECIPES.h264Mp4 })).h264Mp4; // 100 frames at 25 fps, keyframe every 25
    const req = { ffmpeg: resolveBinaries().ffmpeg, input: file, streamIndex: 0, rotation: 0 as const, width: 320, height: 240, size: 64, format: 'png' as const, jpegQuality: 95 };
    const samples = planSamples({ durationSeconds: 4, frameCount: 100, frameRate: 25 }, 12);
    const [seeks, passes] = [await extractFrames({ ...req, samples, concurrency: 2 }), await extractByPasses({ ...req, samples, segments: 2, concurrency: 2 })];
    expect(seeks.missing).toEqual([]);
    expect(passes.missing).toEqual([]);
    expect(seeks.frames.map((f) => f.timestamp)).toEqual(linspaceIndices(100, 12).map((i) => i / 25));
    expect(passes.frames.map((f) => f.timestamp)).toEqual(seeks.frames.map((f) => f.timestamp));
    expect(passes.frames.map((f) => f.sample)).toEqual([...Array(12).keys()]);
    passes.frames.forEach((f, i) => expect(f.data.equals(seeks.frames[i].data)).toBe(true));
    // testsrc frames differ from one another, so equal bytes mean equal frames, not a constant picture.
    expect(new Set(seeks.frames.map((f) => f.data.toString('base64'))).size).toBe(12);
  }, 60_000);

  test('one pass picks 256 frames: the select expression stays within ffmpeg\'s nesting limit', async () => {
    // ffmpeg 5.1 refuses a flat sum of ~100 terms; a 256-sample pass (one vCPU, or a 2-core machine
    // at 512 frames) must still parse, and keep exactly the planned frames.
    const file = (await videoFiles({ longGop10minMp4: RECIPES.longGop10minMp4 })).longGop10minMp4; // 6000 frames at 10 fps
    const req = { ffmpeg: resolveBinaries().ffmpeg, input: file, streamIndex: 0, rotation: 0 as const, width: 160, height: 120, size: 16, format: 'png' as const, jpegQuality: 95 };
    const samples = planSamples({ durationSeconds: 600, frameCount: 6000, frameRate: 10 }, 256);
    const r = await extractByPasses({ ...req, samples, segments: 1 });
    expect(r.missing).toEqual([]);
    expect(r.frames.map((f) => Math.round(f.timestamp * 10))).toEqual(linspaceIndices(6000, 256));
    // Nesting grows as log2 of the terms, not with their number.
    const depth = (e: string) => [...e].reduce((acc, c) => ({ d: acc.d + (c === '(' ? 1 : c === ')' ? -1 : 0), max: Math.max(acc.max, acc.d + (c === '(' ? 1 : 0)) }), { d: 0, max: 0 }).max;
    expect(depth(pickExpression(samples.map((p) => p.seek), 0))).toBeLessThanOrEqual(10);
  }, 120_000);

  test('a pass past the end of the stream reports the samples it did not reach', async () => {
    const file = (await videoFiles({ h264Mp4: RECIPES.h264Mp4 })).h264Mp4;
    const req = { ffmpeg: resolveBinaries().ffmpeg, input: file, streamIndex: 0, rotation: 0 as const, width: 320, height: 240, size: 32, format: 'png' as const, jpegQuality: 95 };
    // The container says 4 s; pretend it said 8 s: the second half of the samples lie beyond the end.
    const samples = planSamples({ durationSeconds: 8, frameCount: 200, frameRate: 25 }, 8);
    const r = await extractByPasses({ ...req, samples, segments: 1 });
    expect(r.frames.map((f) => f.sample)).toEqual([0, 1, 2, 3]);
    expect(r.missing.map((m) => m.sample)).toEqual([4, 5, 6, 7]);
    expect(r.missing[0].why).toMatch(/stream ended at 3\.\d+ s/);
  }, 60_000);
});
