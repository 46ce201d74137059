/**
 * The one shader preprocessor: a line `//#include NAME` is replaced by another WGSL file's text.
 * NAME is either a file in the registry (`"rope_common.wgsl"`, quoted) or a slot (`weights`,
 * bare) that the caller fills per variant, e.g. `{ weights: 'weights_q4_k.wgsl' }`. That is how
 * one matmul kernel becomes one variant per weight format without splicing strings in TS.
 * Everything else (sizes, flags) uses WGSL `override` constants.
 */

const INCLUDE = /^[ \t]*\/\/#include[ \t]+(?:"([\w.-]+)"|(\w+))[ \t]*$/gm;

export function preprocessWgsl(
  name: string,
  sources: Readonly<Record<string, string>>,
  slots: Readonly<Record<string, string>> = {},
  seen: readonly string[] = [],
): string {
  const source = sources[name];
  if (source === undefined) throw new Error(`shader '${name}' is not registered`);
  if (seen.includes(name)) throw new Error(`shader include cycle: ${[...seen, name].join(' -> ')}`);
  return source.replace(INCLUDE, (_line, file: string | undefined, slot: string | undefined) => {
    const target = file ?? slots[slot!];
    if (target === undefined) throw new Error(`${name}: include slot '${slot}' has no file for this variant`);
    return `// ---- begin ${target}\n${preprocessWgsl(target, sources, slots, [...seen, name])}\n// ---- end ${target}`;
  });
}
