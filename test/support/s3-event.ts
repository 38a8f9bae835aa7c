/** The S3 ObjectCreated notification for uploaded objects (the builder lives with the handler, which the local pipeline also uses). */
export { buildS3Event as s3Event, encodeEventKey, s3EventRecord } from '../../lambda/extract-frames/s3-event';
