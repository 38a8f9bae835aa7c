/**
 * The tiny random LLaVA-OneVision checkpoint in Hugging Face layout, converted by our converter:
 * the real model package the worker tests run the real ONNX engine on (answers are meaningless,
 * the code path is the production one).
 */
import { resolveDefaultModel } from '../../../container/local/model';

export async function tinyModelDir(): Promise<string> {
  return (await resolveDefaultModel({ env: {} })).dir;
}
