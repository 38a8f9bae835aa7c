/**
 * Seeks in MPEG-TS and MPEG-PS (no index) land past the keyframe before the time; the extractor
 * decodes those from a lead before each sample (lambda/extract-frames/seek-accuracy.ts). Checked
 * against one sequential decode of every frame, with the real ffmpeg on generated files.
 */
import { resolveBinaries } from '../../lambda/extract-frames/binaries';
import { runProcess } from '../../lambda/extract-frames/process';
import { decodeAllFrames, extractByPasses, extractFrames, ffmpegCommand, seekWindow, type EncodedFrame } from '../../lambda/extract-frames/frame-extractor';
import { linspaceIndices, planSamples } from '../../lambda/extract-frames/frame-sampler';
import { chooseStrategy } from '../../lambda/extract-frames/extraction-strategy';
import { seekLeadSeconds, seeksExactly } from '../../lambda/extract-frames/seek-accuracy';
import { sampleFrames } from '../../lambda/extract-frames/sample-frames';
import { probeVideo } from '../../lambda/extract-frames/probe';
import { DERIVED, RECIPES, videoFiles } from '../support/videos';

const bin = resolveBinaries();
const FRAMES = 750; // 30 s at 25 fps; keyframes at 0, 10 and 20 s
const N = 8;
const files = () => videoFiles({ ts: RECIPES.longGopTs, ps: DERIVED.longGopPs, mp4: DERIVED.longGopMp4 });
const request = (input: string, demuxer: string, seekLeadSeconds = 0) => ({ ffmpeg: bin.ffmpeg, input, demuxer, streamIndex: 0, rotation: 0 as const, width: 160, height: 120, size: 32, format: 'png' as const, jpegQuality: 95, seekLeadSeconds });

/** Every frame, decoded once from the start: the frames at the linspace indices are the truth. */
async function reference(input: string, demuxer: string): Promise<EncodedFrame[]> {
  const all = await decodeAllFrames({ ...request(input, demuxer), maxFrames: FRAMES, choose: linspaceIndices });
  expect(all.frames).toHaveLength(FRAMES);
  return linspaceIndices(FRAMES, N).map((i) => all.frames[i]);
}

const samples = () => planSamples({ durationSeconds: 30, frameCount: FRAMES, frameRate: 25 }, N);
const expectSame = (got: EncodedFrame[], want: EncodedFrame[]) => {
  expect(got.map((f) => f.timestamp.toFixed(2))).toEqual(want.map((f) => f.timestamp.toFixed(2)));
  got.forEach((f, i) => expect(f.data.equals(want[i].data)).toBe(true));
};

describe('seeks in containers without an index', () => {
  test('the premise: a plain input seek into MPEG-TS returns the next keyframe (or nothing), into MP4 the frame asked for', async () => {
    const f = await files();
    // The frame index a seek to 15 s returns, found by comparing its checksum with every frame's.
    const md5s = async (input: string, seek?: number) => {
      const r = await runProcess(bin.ffmpeg, ['-v', 'error', ...(seek !== undefined ? ['-ss', String(seek)] : []), '-i', input, '-map', '0:0', ...(seek !== undefined ? ['-frames:v', '1'] : []), '-f', 'framemd5', '-'], { timeoutMs: 60_000 });
      return r.stdout.toString().split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',')[5].trim());
    };
    const all = await md5s(f.ts);
    expect(all).toHaveLength(FRAMES);
    expect(all.indexOf((await md5s(f.mp4, 15))[0])).toBe(375);
    expect(all.indexOf((await md5s(f.ts, 15))[0])).toBe(500); // 20 s, not 15 s
    expect(await md5s(f.ts, 25)).toEqual([]);
  }, 120_000);

  test('which containers need a lead, and how long', () => {
    expect(seeksExactly('mov') && seeksExactly('matroska') && seeksExactly(undefined)).toBe(true);
    expect(seeksExactly('mpegts') || seeksExactly('mpeg')).toBe(false);
    expect(seekLeadSeconds('mov', 10)).toBe(0);
    expect(seekLeadSeconds('mpegts', 10)).toBe(13.5);
    expect(seekLeadSeconds('mpeg', undefined)).toBe(Infinity);
    // A seek with a lead: the demuxer goes back by the lead, the time asked becomes the pick.
    expect(seekWindow({ seek: 15, maxFrames: 1 }, 13.5)).toEqual({ seek: 1.5, pick: [15], maxFrames: 1 });
    expect(seekWindow({ seek: 5, maxFrames: 1 }, 13.5)).toEqual({ seek: 0, pick: [5], maxFrames: 1 });
    expect(seekWindow({ seek: 5, maxFrames: 1 }, 0)).toEqual({ seek: 5, maxFrames: 1 });
    const cmd = ffmpegCommand(request('x.ts', 'mpegts', 13.5), { seek: 15, maxFrames: 1 });
    expect(cmd.slice(cmd.indexOf('-ss'), cmd.indexOf('-ss') + 2)).toEqual(['-ss', '1.500000']);
    expect(cmd[cmd.indexOf('-vf') + 1]).toMatch(/^select='gte\(t,13\.500000\)\*\(isnan\(prev_t\)\+lt\(prev_t,13\.500000\)\)',showinfo/);
    // Unknown keyframe interval in such a container: one pass from the start, whatever the cost.
    const video = { n: 8, frameCount: 90_000, frameCountExact: false, durationSeconds: 3600, frameRate: 25, width: 1920, height: 1080, cores: 4 };
    expect(chooseStrategy({ ...video, keyframeSeconds: 2 })).toMatchObject({ mode: 'seek' });
    expect(chooseStrategy({ ...video, keyframeSeconds: 2, seekLeadSeconds: Infinity })).toMatchObject({ mode: 'pass', segments: 1 });
    // A lead makes every seek dearer: the break-even moves toward passes.
    const dense = { ...video, n: 256, frameCount: 30_000, durationSeconds: 1200, keyframeSeconds: 10, width: 1280, height: 720, cores: 2 };
    expect(chooseStrategy({ ...dense, n: 128 })).toMatchObject({ mode: 'seek' });
    expect(chooseStrategy({ ...dense, n: 128, seekLeadSeconds: 13.5 })).toMatchObject({ mode: 'pass' });
  });

  for (const kind of ['ts', 'ps'] as const) {
    const demuxer = kind === 'ts' ? 'mpegts' : 'mpeg';
    test(`${kind.toUpperCase()}: seeks and passes with the lead give the frames a full decode has at the sample times`, async () => {
      const input = (await files())[kind];
      const want = await reference(input, demuxer);
      const req = request(input, demuxer, seekLeadSeconds(demuxer, 10));
      const seeks = await extractFrames({ ...req, samples: samples(), concurrency: 2 });
      expect(seeks.missing).toEqual([]);
      expectSame(seeks.frames, want);
      const passes = await extractByPasses({ ...req, samples: samples(), segments: 3, concurrency: 2 });
      expect(passes.missing).toEqual([]);
      expectSame(passes.frames, want);
      // Without the lead the same seeks return other frames (the premise, through our own command).
      const plain = await extractFrames({ ...request(input, demuxer), samples: samples(), concurrency: 2 });
      expect(plain.frames.map((f) => f.timestamp.toFixed(2))).not.toEqual(want.map((f) => f.timestamp.toFixed(2)));
    }, 120_000);
  }

  test('sampleFrames on an MPEG-TS upload: the keyframe probe sets the lead, every sample is the right frame', async () => {
    const input = (await files()).ts;
    const want = await reference(input, 'mpegts');
    const probe = await probeVideo(bin.ffprobe, input, { demuxer: 'mpegts' });
    const logs: Record<string, unknown>[] = [];
    const log = { info: (msg: string, f?: object) => logs.push({ msg, ...f }), warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as never;
    const r = await sampleFrames({ ffmpeg: bin.ffmpeg, ffprobe: bin.ffprobe, input, demuxer: 'mpegts', video: probe.video!, durationSeconds: 30, frames: N, extraction: { imageSize: 32, format: 'png', jpegQuality: 95 }, concurrency: 2, log });
    expect(r.missing).toEqual([]);
    expectSame(r.frames, want);
    expect(logs.find((l) => l.msg === 'sampling frames')).toMatchObject({ keyframeSeconds: 10, seekLeadSeconds: 13.5 });
  }, 120_000);
});
