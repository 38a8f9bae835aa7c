// Placeholder: the frame-extraction handler is being written (issue 3).
export async function handler(): Promise<void> {
  throw new Error('not implemented yet');
}
