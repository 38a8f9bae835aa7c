/**
 * The LMM runtime: a converted LLaVA-OneVision package on onnxruntime-node, behind the worker's
 * AnswerEngine seam (engine.ts). createOnnxEngine is the entry point; the other modules are its
 * parts (sessions, preprocessing, vision batches, pooling, prompt, decoder + KV cache, generation).
 */
export * from './engine';
export { createOnnxEngine, assembleEmbeddings, type OnnxEngine, type OnnxEngineOptions } from './onnx-engine';
export { loadModel, type LoadedModel } from './loaded-model';
export { checkCudaAvailable, ExecutionProviderError, type ExecutionProviderName, type SessionConfig } from './session';
export { FrameDecodeError } from './preprocess';
