/** One case of test/fixtures/hostile/cases.json (written by scripts/make-hostile-corpus.ts). */
export interface HostileCase {
  name: string;
  command: 'quantize' | 'verify';
  /** Path (relative to the case directory) given to the command. */
  target: string;
  exit: number;
  /** Text the one-line error must contain. */
  message: string;
  /** Relative path of the file the message must name ('.' for the directory). */
  file: string;
  tensor?: string;
}
