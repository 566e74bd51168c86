// Node adapter: SVG → PNG with resvg (WebAssembly build, no native binary) and the DejaVu Sans font shipped in
// the `dejavu-fonts-ttf` package, so text renders the same on every machine without system fonts.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Resvg, initWasm } from '@resvg/resvg-wasm';

const require = createRequire(import.meta.url);

let ready: Promise<Uint8Array[]> | undefined;

// resvg's wasm may be initialised once per process; the font files are read once too.
function init(): Promise<Uint8Array[]> {
  ready ??= (async () => {
    await initWasm(readFileSync(require.resolve('@resvg/resvg-wasm/index_bg.wasm')));
    return ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((file) => new Uint8Array(readFileSync(require.resolve(`dejavu-fonts-ttf/ttf/${file}`))));
  })();
  return ready;
}

function svgWidth(svg: string): number {
  const match = /<svg\b[^>]*\bwidth="([\d.]+)"/.exec(svg);
  return match ? Number(match[1]) : NaN;
}

/** Rasterises an SVG to PNG bytes; `width` in pixels (default: twice the SVG's width, for sharp text). */
export async function svgToPng(svg: string, opts: { width?: number } = {}): Promise<Uint8Array> {
  if (opts.width !== undefined && !(Number.isInteger(opts.width) && opts.width > 0 && opts.width <= 16384)) {
    throw new Error(`svgToPng: width must be an integer in 1..16384, got ${opts.width}`);
  }
  if (!/^\s*(<\?xml[^>]*>\s*)?<svg\b/.test(svg)) throw new Error('svgToPng: input does not start with an <svg> element');
  const fonts = await init();
  const native = svgWidth(svg);
  const width = opts.width ?? (Number.isFinite(native) ? Math.round(2 * native) : 1200);
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'width', value: width },
    background: 'white',
    font: { fontBuffers: fonts, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  try {
    const image = resvg.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}
