/**
 * The frame-extraction Lambda's container image (lambda/extract-frames/Dockerfile): the ffmpeg
 * release that parses untrusted uploads in the deployed stack, pinned by version, image digest and
 * the SHA-256 of each binary. The Dockerfile's ARG defaults must equal these (asserted by
 * test/stack/extraction-image.test.ts); the stack passes them as build arguments, so a change here
 * is a new image.
 */
import * as path from 'node:path';
import { REPO_ROOT } from './paths';

export const EXTRACT_DOCKERFILE = 'lambda/extract-frames/Dockerfile';
export const EXTRACT_DOCKERFILE_PATH = path.join(REPO_ROOT, EXTRACT_DOCKERFILE);

export const LAMBDA_FFMPEG = {
  version: '7.1.1',
  /** A static (musl) build of the FFmpeg release, by tag and content digest. */
  image: 'mwader/static-ffmpeg:7.1.1@sha256:11a44711684c0b9f754c047dcd64235b8b52deab251bd0e0a86f22faa160749c',
  ffmpegSha256: '810f94020e76e2b58fb44759a322e86bea5d213ebededad7471f3a15b0bf2c5c',
  ffprobeSha256: '4818b8964b5d7b699370628a4154c97e88205678ee506ca72e9330600e917667',
} as const;

/** The Dockerfile's build arguments for the pinned release. */
export function ffmpegBuildArgs(): Record<string, string> {
  return {
    FFMPEG_VERSION: LAMBDA_FFMPEG.version,
    FFMPEG_IMAGE: LAMBDA_FFMPEG.image,
    FFMPEG_SHA256: LAMBDA_FFMPEG.ffmpegSha256,
    FFPROBE_SHA256: LAMBDA_FFMPEG.ffprobeSha256,
  };
}

/** Where the image puts the binaries (and sets FFMPEG_PATH / FFPROBE_PATH to). */
export const IMAGE_FFMPEG_PATH = '/opt/bin/ffmpeg';
export const IMAGE_FFPROBE_PATH = '/opt/bin/ffprobe';
