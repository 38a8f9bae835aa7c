/**
 * What the model sees, in one module shared by the extraction Lambda, the worker's runtime and
 * `longsight frames`: decoded RGB → Pillow's resize (exact port) → rescale and normalise with the
 * checkpoint's constants (float32 steps as the reference), and the lossless frame files between them.
 */
export { pilResize, pilFilter, axisCoefficients, PIL_FILTERS, type Image8 } from './pil-resize';
export { normalisationTable, normaliseRgb, LLAVA_ONEVISION_PROCESSOR, type ProcessorConstants } from './normalise';
export { encodeFrame, decodeImageRgb, type FrameFormat } from './frame-image';
export { toModelRgb, framesToPixelValues } from './pixel-values';
