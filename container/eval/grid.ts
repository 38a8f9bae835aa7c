/**
 * The settings an eval runs: every combination of --frames, --rope and --pooling (one value each
 * is one setting; several make a sweep). A setting left unset keeps the environment's default
 * (locally: visual-yarn RoPE, pooling 4,2,8). Pure.
 */
import { MAX_FRAMES, PoolingScheduleSchema, ROPE_MODES, type PoolingSchedule, type RopeMode } from '../../lib/contracts';

export interface EvalSetting {
  frames: number;
  rope?: RopeMode;
  pooling?: PoolingSchedule;
  timeAware: boolean;
}

export class GridError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GridError';
  }
}

export function parseFramesList(v: string): number[] {
  const out = v.split(',').map((s) => s.trim());
  for (const s of out) {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < 1 || n > MAX_FRAMES) throw new GridError(`--frames: "${s}" is not a whole number from 1 to ${MAX_FRAMES} (e.g. 32,64,128,256)`);
  }
  return [...new Set(out.map(Number))];
}

export function parseRopeList(v: string): RopeMode[] {
  const out = v.split(',').map((s) => s.trim());
  for (const s of out) if (!(ROPE_MODES as readonly string[]).includes(s)) throw new GridError(`--rope: "${s}" is not one of ${ROPE_MODES.join(', ')}`);
  return [...new Set(out)] as RopeMode[];
}

/** `4,2,8:1,2,2` → two schedules (K,s_h,s_l each; ':' between schedules). */
export function parsePoolingList(v: string): PoolingSchedule[] {
  return v.split(':').map((one) => {
    const m = /^\s*(\d+),(\d+),(\d+)\s*$/.exec(one);
    if (!m) throw new GridError(`--pooling: "${one}" is not K,s_h,s_l (e.g. 4,2,8; several joined by ':', e.g. 4,2,8:1,2,2)`);
    const r = PoolingScheduleSchema.safeParse({ groupSize: Number(m[1]), strideHigh: Number(m[2]), strideLow: Number(m[3]) });
    if (!r.success) throw new GridError(`--pooling ${one}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return r.data;
  });
}

export function expandGrid(frames: number[], ropes: (RopeMode | undefined)[], poolings: (PoolingSchedule | undefined)[], timeAware: boolean): EvalSetting[] {
  const out: EvalSetting[] = [];
  for (const rope of ropes.length ? ropes : [undefined]) {
    for (const pooling of poolings.length ? poolings : [undefined]) {
      for (const f of frames) out.push({ frames: f, ...(rope ? { rope } : {}), ...(pooling ? { pooling } : {}), timeAware });
    }
  }
  return out;
}

export const poolingText = (p?: PoolingSchedule) => (p ? `${p.groupSize},${p.strideHigh},${p.strideLow}` : 'default');

/** A setting's name in results files, S3 keys and file names: `f64_visual-yarn_4-2-8` (`_time` when time-aware). */
export function settingName(s: EvalSetting): string {
  return [`f${s.frames}`, s.rope ?? 'default', poolingText(s.pooling).replace(/,/g, '-'), ...(s.timeAware ? ['time'] : [])].join('_');
}

/** The setting without its frame count: one line in the plots. */
export function seriesName(s: Pick<EvalSetting, 'rope' | 'pooling' | 'timeAware'>): string {
  return `rope ${s.rope ?? 'default'} · pooling ${poolingText(s.pooling)}${s.timeAware ? ' · time-aware' : ''}`;
}
