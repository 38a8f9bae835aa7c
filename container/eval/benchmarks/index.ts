/** The benchmarks `longsight eval` runs. */
import { longvideobench } from './longvideobench';
import { mlvu } from './mlvu';
import type { Benchmark, BenchmarkName } from './types';
import { videomme } from './videomme';

export * from './types';

export const BENCHMARK_DEFINITIONS: Record<BenchmarkName, Benchmark> = { videomme, mlvu, longvideobench };
