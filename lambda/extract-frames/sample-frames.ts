/**
 * From a probed video to its stored frames: plan the N sample times (LLaVA-NeXT's linspace), pick
 * seek or pass by cost, decode and preprocess, drop samples that landed on the same frame, and
 * refuse a video whose frames mostly would not decode. The extraction Lambda and `longsight frames`
 * both run exactly this.
 */
import os from 'node:os';
import type { ExtractionConfig } from '../../lib/contracts/env-config';
import type { Logger } from '../../lib/log';
import { checkCoverage, PermanentInputError, reasonForNoFrames } from './failure-reasons';
import { decodeAllFrames, extractByPasses, extractFrames, type EncodedFrame, type ExtractResult, type FrameRequest } from './frame-extractor';
import { dropDuplicateFrames, linspaceIndices, planSamples } from './frame-sampler';
import { chooseStrategy, type Strategy } from './extraction-strategy';
import { packetsToRead, probeKeyframeSpacing } from './keyframes';
import { seekLeadSeconds } from './seek-accuracy';
import type { VideoStreamInfo } from './probe';

export interface SampleFramesOptions {
  ffmpeg: string;
  ffprobe: string;
  /** URL (presigned GET) or local path. */
  input: string;
  /** The demuxer the upload was sniffed as (input-restrictions.ts); absent: ffmpeg probes. */
  demuxer?: string;
  video: VideoStreamInfo;
  durationSeconds: number;
  /** Frames to sample. */
  frames: number;
  extraction: Pick<ExtractionConfig, 'imageSize' | 'format' | 'jpegQuality'>;
  /** ffmpeg processes at once (default: the CPU count, i.e. the Lambda's vCPUs). */
  concurrency?: number;
  log?: Logger;
  onProgress?: (done: number, total: number) => void;
}

export interface SampledFrames {
  /** In time order, duplicates dropped. */
  frames: EncodedFrame[];
  missing: ExtractResult['missing'];
  strategy: Strategy;
  keyframeSeconds?: number;
}

export async function sampleFrames(o: SampleFramesOptions): Promise<SampledFrames> {
  const v = o.video;
  const cores = o.concurrency ?? (os.availableParallelism?.() ?? os.cpus().length);
  // The keyframe interval decides what a seek costs; only needed when there is a choice to make.
  const needsChoice = !(v.frameCount !== undefined && v.frameCount <= o.frames);
  const spacing = needsChoice ? await probeKeyframeSpacing(o.ffprobe, o.input, v.index, packetsToRead(v.frameRate), o.demuxer) : undefined;
  const keyframeSeconds = spacing?.seconds ?? spacing?.atLeastSeconds;
  // MPEG-TS/PS seeks land past the keyframe: those decode from further back (seek-accuracy.ts).
  const lead = seekLeadSeconds(o.demuxer, spacing?.seconds);
  const request: FrameRequest = {
    ffmpeg: o.ffmpeg,
    input: o.input,
    streamIndex: v.index,
    rotation: v.rotation,
    width: v.displayWidth,
    height: v.displayHeight,
    size: o.extraction.imageSize,
    format: o.extraction.format,
    jpegQuality: o.extraction.jpegQuality,
    demuxer: o.demuxer,
    seekLeadSeconds: lead,
  };
  const strategy = chooseStrategy({ n: o.frames, frameCount: v.frameCount, frameCountExact: v.frameCountExact, durationSeconds: o.durationSeconds, frameRate: v.frameRate, width: v.displayWidth, height: v.displayHeight, keyframeSeconds, cores, seekLeadSeconds: lead });
  o.log?.info('sampling frames', { requested: o.frames, frameCount: v.frameCount, keyframeSeconds, cores, ...(lead ? { seekLeadSeconds: Number.isFinite(lead) ? +lead.toFixed(2) : 'from the start' } : {}), ...strategyFields(strategy) });

  const samples = (frameCount = v.frameCount) => planSamples({ durationSeconds: o.durationSeconds, frameCount, frameRate: v.frameRate }, o.frames);
  const common = { ...request, concurrency: cores, onProgress: o.onProgress };
  let extracted: ExtractResult;
  if (strategy.mode === 'all') extracted = await decodeAllFrames({ ...request, maxFrames: o.frames, choose: linspaceIndices });
  else if (strategy.mode === 'pass') extracted = await extractByPasses({ ...common, samples: samples(), segments: strategy.segments });
  else extracted = await extractFrames({ ...common, samples: samples() });
  if (extracted.overflowFrames !== undefined) {
    // The container's frame count (an estimate) was far too low: sample the whole video by seeking.
    o.log?.warn('the stream has far more frames than the container states: sampling by seeking', { stated: v.frameCount, decoded: extracted.overflowFrames });
    const all = samples(extracted.overflowFrames);
    // Where seeks are inexact and the keyframe interval unknown, one pass from the start instead.
    extracted = Number.isFinite(lead) ? await extractFrames({ ...common, samples: all }) : await extractByPasses({ ...common, samples: all, segments: 1 });
  }

  const frames = dropDuplicateFrames(extracted.frames);
  if (frames.length === 0) throw new PermanentInputError(reasonForNoFrames(extracted.missing[0]?.why ?? '', v.codec));
  checkCoverage(extracted.frames.length, extracted.frames.length + extracted.missing.length, frames[frames.length - 1].timestamp, o.durationSeconds);
  if (extracted.missing.length) o.log?.warn('some sampled frames could not be decoded', { missing: extracted.missing.length, first: extracted.missing[0] });
  if (frames.length < extracted.frames.length) o.log?.info('samples that decoded to the same frame were dropped', { dropped: extracted.frames.length - frames.length });
  return { frames, missing: extracted.missing, strategy, keyframeSeconds };
}

function strategyFields(s: Strategy): Record<string, unknown> {
  if (s.mode === 'all') return { mode: 'all' };
  const e = s.estimate;
  return { mode: s.mode, ...(s.mode === 'pass' ? { segments: s.segments } : {}), estimatedSeekCpuS: +(e.seekMs / 1000).toFixed(1), estimatedPassCpuS: +(e.passMs / 1000).toFixed(1) };
}
