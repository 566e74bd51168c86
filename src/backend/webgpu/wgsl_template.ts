// WGSL templating: the shaders in shaders/ are specialised per pipeline (workgroup size, op code, tile
// sizes, unrolled loops) by text substitution before compilation.

/**
 * `__NAME__` becomes tpl.NAME (0 when absent); a block between `//#unroll v COUNT` and `//#end` is repeated
 * for v = 0 … COUNT-1 (COUNT a number or a tpl name) with `{v}` replaced by the index (`{v/N}` and `{v%N}`
 * by its quotient and remainder, N a number or a tpl name). Blocks nest: the innermost expand first,
 * leaving the outer variables' `{…}` for the outer expansion.
 */
export function expandTemplate(src: string, tpl: Record<string, number>): string {
  const value = (token: string): number => (/^\d+$/.test(token) ? Number(token) : (tpl[token] ?? 0));
  const innermost = /^\/\/#unroll (\w+) (\w+)\n((?:(?!\/\/#unroll )[\s\S])*?)^\/\/#end\n/m;
  let text = src;
  for (let block = innermost.exec(text); block; block = innermost.exec(text)) {
    const [whole, variable, count, body] = block;
    const repeats = value(count);
    const index = new RegExp(`\\{${variable}(?:([/%])(\\w+))?\\}`, 'g');
    let out = '';
    for (let i = 0; i < repeats; i++) {
      out += body.replace(index, (_match, op: string | undefined, divisor: string | undefined) =>
        String(op === '/' ? Math.floor(i / value(divisor!)) : op === '%' ? i % value(divisor!) : i));
    }
    text = text.slice(0, block.index) + out + text.slice(block.index + whole.length);
  }
  return text.replace(/__([A-Z][A-Z0-9_]*)__/g, (_, name: string) => String(tpl[name] ?? 0));
}
