/**
 * A survey of what is in a bucket (or prefix) for one index profile: which objects are videos,
 * each video's job id under the profile, and its job if one exists (BatchGetItem, 100 ids a call).
 * The backfill indexes the videos without a job; the archive report groups them all.
 */
import type { JobItem } from '../../lib/contracts';
import { jobIdFor } from '../../lib/contracts/job-id';
import { notAVideo, type ListedObject } from './listing';

export interface SurveyedVideo {
  object: ListedObject;
  jobId: string;
  job?: JobItem;
}

export interface Survey {
  /** Objects listed (videos and others). */
  listed: number;
  /** Objects that are not videos, counted by why. */
  notVideos: Map<string, number>;
  videos: SurveyedVideo[];
}

export type JobsLookup = (jobIds: string[]) => Promise<Map<string, JobItem>>;

export async function surveyVideos(pages: AsyncIterable<ListedObject[]>, profile: string, jobs: JobsLookup, onPage?: (s: Survey) => void): Promise<Survey> {
  const survey: Survey = { listed: 0, notVideos: new Map(), videos: [] };
  for await (const page of pages) {
    survey.listed += page.length;
    const videos: SurveyedVideo[] = [];
    for (const object of page) {
      const why = notAVideo(object.key);
      if (why) survey.notVideos.set(why, (survey.notVideos.get(why) ?? 0) + 1);
      else videos.push({ object, jobId: jobIdFor(object, profile) });
    }
    const found = videos.length ? await jobs(videos.map((v) => v.jobId)) : new Map<string, JobItem>();
    for (const v of videos) {
      const job = found.get(v.jobId);
      survey.videos.push(job ? { ...v, job } : v);
    }
    onPage?.(survey);
  }
  return survey;
}

export interface Selection {
  /** Videos to hand to the extraction (no job under the profile yet), at most `limit`. */
  toIndex: SurveyedVideo[];
  /** Videos with a job already (a rerun resumes past them). */
  existing: SurveyedVideo[];
  /** Videos without a job left for a later run by --limit. */
  deferred: number;
}

export function selectForIndexing(survey: Survey, limit?: number): Selection {
  const existing = survey.videos.filter((v) => v.job);
  const missing = survey.videos.filter((v) => !v.job);
  const toIndex = limit === undefined ? missing : missing.slice(0, limit);
  return { toIndex, existing, deferred: missing.length - toIndex.length };
}
