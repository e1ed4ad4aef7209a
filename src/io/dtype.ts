/**
 * float16 / bfloat16 <-> float32 conversion on raw bit patterns (typed arrays, no tensor library).
 * All conversions work on Uint32 views of the f32 arrays, so NaN payloads are kept exactly where the target can hold them.
 * - f16 -> f32 and bf16 -> f32 are exact (subnormals, +-0, +-inf, NaN payloads included).
 * - f32 -> f16 and f32 -> bf16 round to nearest, ties to even; overflow gives +-inf; f32 subnormals too small for the
 *   target flush to +-0 by rounding. A NaN stays a NaN: its top mantissa bits are kept, and the quiet bit is set if
 *   the kept bits would otherwise be zero (which would read as inf).
 * `dst`, when given, must have the same length as `src`.
 */

let f16Table: Uint32Array | undefined;

/** f32 bits of one f16 bit pattern. */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: value = mant * 2^-24; normalise so that bit 10 is the implicit one
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/** f16 bits of one f32 bit pattern, round to nearest even. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const m = mant >>> 13;
    return sign | 0x7c00 | (m === 0 ? 0x200 : m);
  }
  const e = exp - 112; // f16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // |x| < 2^-25: rounds to 0
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++; // may carry into the smallest normal: correct
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // may carry into the exponent, up to inf: correct
  return sign | h;
}

/** bf16 bits of one f32 bit pattern, round to nearest even. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
    const h = x >>> 16;
    return (h & 0x7f) === 0 ? h | 0x40 : h;
  }
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function checkDst(n: number, dst: { length: number } | undefined, fn: string): void {
  if (dst && dst.length !== n) throw new RangeError(`${fn}: dst has length ${dst.length}, expected ${n}`);
}

export function f16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  checkDst(src.length, dst, 'f16ToF32');
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  const out = dst ?? new Float32Array(src.length);
  const o = u32View(out);
  const t = f16Table;
  for (let i = 0; i < src.length; i++) o[i] = t[src[i]!]!;
  return out;
}

export function f32ToF16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  checkDst(src.length, dst, 'f32ToF16');
  const out = dst ?? new Uint16Array(src.length);
  const s = u32View(src);
  for (let i = 0; i < s.length; i++) out[i] = f32BitsToF16Bits(s[i]!);
  return out;
}

export function bf16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  checkDst(src.length, dst, 'bf16ToF32');
  const out = dst ?? new Float32Array(src.length);
  const o = u32View(out);
  for (let i = 0; i < src.length; i++) o[i] = src[i]! << 16;
  return out;
}

export function f32ToBf16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  checkDst(src.length, dst, 'f32ToBf16');
  const out = dst ?? new Uint16Array(src.length);
  const s = u32View(src);
  for (let i = 0; i < s.length; i++) out[i] = f32BitsToBf16Bits(s[i]!);
  return out;
}
