/** The README's checked examples: the ```js block after `<!-- checked example: NAME -->`, for tests that run it. */
import { readFileSync } from 'node:fs';

export function readmeExample(name: string): string {
  const readme = readFileSync('README.md', 'utf8');
  const match = new RegExp(`<!-- checked example: ${name} -->\\n\`\`\`js\\n([\\s\\S]*?)\\n\`\`\``).exec(readme);
  if (!match) throw new Error(`README.md has no checked example '${name}'`);
  return match[1]!;
}

/** The constructor of an async function with these parameter names, to run an example's top-level awaits. */
export const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<void>;
