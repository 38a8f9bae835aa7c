/**
 * Independent float64 reference forward for LLaVA-OneVision (SigLIP + projector, Qwen2 decoder),
 * written from the model definition to check the converted ONNX graphs. Slow by design.
 */
export * from './config';
export * from './math';
export * from './weights';
export * from './vision';
export * from './pooling';
export * from './decoder';
export * from './checkpoint';
