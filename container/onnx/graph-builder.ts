/**
 * A small ONNX graph builder: named inputs/outputs, nodes, and initializers that are streamed to
 * an external-data file as they are added (ONNX external data: `location`/`offset`/`length`
 * entries, `data_location = EXTERNAL`), so building a multi-gigabyte model never holds more than
 * one tensor in memory and the .onnx protobuf itself stays small (protobuf's 2 GB limit).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel } from './proto';

export type OnnxDtype = 'float32' | 'float16' | 'bfloat16' | 'int32' | 'int64' | 'bool';
export const ONNX_ELEM_TYPE: Record<OnnxDtype, number> = { float32: 1, float16: 10, bfloat16: 16, int32: 6, int64: 7, bool: 9 };
export const ONNX_DTYPE_BYTES: Record<OnnxDtype, number> = { float32: 4, float16: 2, bfloat16: 2, int32: 4, int64: 8, bool: 1 };
export type Dim = number | string;

export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { g: SubgraphProto };

/** A built subgraph (Loop body, If branch), ready to be a GRAPH attribute. */
export interface SubgraphProto {
  readonly name: string;
  readonly proto: Record<string, unknown>;
}

/** Attribute helpers: `attrs({ axis: int(1), epsilon: float(1e-6) })`. */
export const int = (i: number): Attr => ({ i });
export const float = (f: number): Attr => ({ f });
export const str = (s: string): Attr => ({ s });
export const ints = (v: number[]): Attr => ({ ints: v });
export const graph = (g: SubgraphProto): Attr => ({ g });

/** Tensors below this size stay inline in the protobuf (shape constants, tiny biases). */
const INLINE_MAX_BYTES = 1024;

class ExternalDataFile {
  private fd: number;
  private offset = 0;
  constructor(readonly filePath: string) {
    this.fd = fs.openSync(filePath, 'w');
  }
  append(bytes: Uint8Array): { offset: number; length: number } {
    // Page-align large tensors so onnxruntime can memory-map them; 64-byte align the rest.
    const align = bytes.byteLength >= 1 << 20 ? 4096 : 64;
    const pad = (align - (this.offset % align)) % align;
    if (pad) {
      fs.writeSync(this.fd, Buffer.alloc(pad));
      this.offset += pad;
    }
    const at = this.offset;
    let done = 0;
    // fs.writeSync takes at most 2 GiB per call; a 7B lm_head in fp32 is 2.2 GB.
    while (done < bytes.byteLength) done += fs.writeSync(this.fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
    this.offset += bytes.byteLength;
    return { offset: at, length: bytes.byteLength };
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** `dims` null: a tensor of unknown rank (If-branch outputs whose shapes differ between branches). */
function valueInfo(name: string, dtype: OnnxDtype, dims: Dim[] | null) {
  const shape = dims === null ? {} : { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } };
  return { name, type: { tensorType: { elemType: ONNX_ELEM_TYPE[dtype], ...shape } } };
}

export interface OpsetImport {
  domain: string;
  version: number;
}

/** What every scope of one model shares: value names (unique across subgraphs too), initializers, external data. */
class ModelContext {
  readonly initializers: Record<string, unknown>[] = [];
  readonly names = new Set<string>();
  counter = 0;
  /** Bytes written to external data so far. */
  externalBytes = 0;
  constructor(readonly graphName: string, readonly external: ExternalDataFile) {}
}

/**
 * One graph's nodes, inputs and outputs: the model's main graph or a subgraph (Loop body, If
 * branch). Subgraphs read outer-scope values by name, as ONNX allows, so weights are always main-graph
 * initializers, whichever scope adds them.
 */
export class GraphScope {
  protected readonly nodes: Record<string, unknown>[] = [];
  protected readonly inputs: Record<string, unknown>[] = [];
  protected readonly outputs: Record<string, unknown>[] = [];

  protected constructor(protected readonly ctx: ModelContext) {}

  get graphName(): string {
    return this.ctx.graphName;
  }

  get externalBytes(): number {
    return this.ctx.externalBytes;
  }

  /** A fresh (unused, not yet claimed) value name with a readable prefix. */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.ctx.counter++}`;
    while (this.ctx.names.has(name));
    return name;
  }

  protected claim(name: string): string {
    if (this.ctx.names.has(name)) throw new Error(`ONNX value name "${name}" used twice in graph ${this.ctx.graphName}`);
    this.ctx.names.add(name);
    return name;
  }

  input(name: string, dtype: OnnxDtype, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), dtype, dims));
    return name;
  }

  /** Declares `value` as a graph output named `name` (adds an Identity when the names differ). */
  output(value: string, name: string, dtype: OnnxDtype, dims: Dim[] | null): string {
    if (value !== name) this.node('Identity', [value], [name]);
    this.outputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** A weight: raw little-endian bytes, written to external data unless tiny (always a main-graph initializer). */
  initializer(name: string, dtype: OnnxDtype, dims: number[], bytes: Uint8Array): string {
    const expected = dims.reduce((a, b) => a * b, 1) * ONNX_DTYPE_BYTES[dtype];
    if (bytes.byteLength !== expected) throw new Error(`initializer "${name}": ${bytes.byteLength} bytes for ${dtype}${JSON.stringify(dims)} (expected ${expected})`);
    this.claim(name);
    const tensor: Record<string, unknown> = { name, dims, dataType: ONNX_ELEM_TYPE[dtype] };
    if (bytes.byteLength <= INLINE_MAX_BYTES) {
      tensor.rawData = Buffer.from(bytes);
    } else {
      const { offset, length } = this.ctx.external.append(bytes);
      this.ctx.externalBytes += length;
      tensor.dataLocation = 1; // EXTERNAL
      tensor.externalData = [
        { key: 'location', value: path.basename(this.ctx.external.filePath) },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ];
    }
    this.ctx.initializers.push(tensor);
    return name;
  }

  constInt64(values: number[], dims: number[] = [values.length]): string {
    const b = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => b.writeBigInt64LE(BigInt(v), i * 8));
    return this.initializer(this.fresh('const_i64'), 'int64', dims, b);
  }

  constFloat32(values: number[], dims: number[] = [values.length]): string {
    return this.initializer(this.fresh('const_f32'), 'float32', dims, Buffer.from(Float32Array.from(values).buffer));
  }

  /** Adds a node; returns its output names (fresh ones when `outputs` is a count). */
  node(opType: string, inputs: string[], outputs: string[] | number = 1, attrs: Record<string, Attr> = {}, domain = ''): string[] {
    const outs = (typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs).map((o) => this.claim(o));
    const attribute = Object.entries(attrs).map(([name, a]) => {
      if ('i' in a) return { name, type: 2, i: a.i };
      if ('f' in a) return { name, type: 1, f: a.f };
      if ('s' in a) return { name, type: 3, s: Buffer.from(a.s, 'utf8') };
      if ('ints' in a) return { name, type: 7, ints: a.ints };
      if ('g' in a) return { name, type: 5, g: a.g.proto };
      return { name, type: 6, floats: a.floats };
    });
    this.nodes.push({ input: inputs, output: outs, name: this.fresh(`n_${opType}`), opType, domain, attribute });
    return outs;
  }

  /** Single-output shorthand. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, domain = ''): string {
    return this.node(opType, inputs, 1, attrs, domain)[0];
  }

  /**
   * Builds a subgraph (a Loop body or an If branch) in its own scope: `build` declares its inputs,
   * nodes and outputs; outer-scope values (this graph's and its ancestors') are read by name.
   */
  subgraph(name: string, build: (sg: GraphScope) => void): SubgraphProto {
    const sg = new GraphScope(this.ctx);
    build(sg);
    return { name, proto: { name, node: sg.nodes, input: sg.inputs, output: sg.outputs } };
  }
}

export class GraphBuilder extends GraphScope {
  /**
   * @param modelPath where `save()` writes the .onnx file; initializers go to `<modelPath>.data`
   * (referenced by its base name, relative to the model, as ONNX requires).
   */
  constructor(graphName: string, readonly modelPath: string) {
    super(new ModelContext(graphName, new ExternalDataFile(`${modelPath}.data`)));
  }

  get dataPath(): string {
    return `${this.modelPath}.data`;
  }

  /** Closes the external data file and writes the model. Returns the .onnx path. */
  save(opsets: OpsetImport[], metadata: Record<string, string> = {}, docString = ''): string {
    this.ctx.external.close();
    const model = {
      irVersion: 9,
      producerName: 'longsight-convert',
      producerVersion: '1',
      docString,
      opsetImport: opsets,
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.ctx.initializers,
      },
    };
    fs.writeFileSync(this.modelPath, encodeModel(model));
    if (this.externalBytes === 0) fs.rmSync(this.dataPath, { force: true });
    return this.modelPath;
  }

  /** Abandons the build (closes and removes the external data file). */
  discard(): void {
    this.ctx.external.close();
    fs.rmSync(this.dataPath, { force: true });
  }
}
