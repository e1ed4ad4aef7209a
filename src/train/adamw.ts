/**
 * The optimizer core, in the spirit of optax: transforms of one tensor, composed as a chain, one code path for
 * `heed train` (a small compiled program per tensor), `heed pretrain` (inside its fused jitted step) and the
 * hashed-feature classifiers (src/eval/train-classifier.ts):
 *
 *   const opt = chain(clipByGlobalNorm(1.0), adamw({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decayMask }));
 *   let state = opt.init(params);                                   // { m, v }: zero buffers
 *   const scal = opt.scalars({ count, lr: lrAt(schedule, count - 1), gradNorm });   // host, once per step
 *   ({ params, state } = opt.update(params, grads, state, fromHost(scal, [scal.length])));  // traced (inside a jit)
 *   // or, outside any jit, one tensor at a time: const u = opt.compile(); await u.update(params, grads, state, scal)
 *
 * Gradient transforms (clipByGlobalNorm) map a tensor's gradient; the chain ends in the update rule (adamw),
 * which keeps per-tensor state and returns the new parameters. Unlike optax the rule returns parameters, not
 * updates: decoupled weight decay p·(1 − lr·wd) is applied to p before the Adam step, the order and rounding
 * torch.optim.AdamW uses (an update u = p' − p added back would not round-trip).
 *
 * Everything that changes from step to step (lr, bias corrections, the clipping scale) is packed on the host
 * into one f32 vector (`scalars`), so every program compiles once. Rounding convention: host values are
 * computed in f64 and rounded once to f32; 1 − β is computed from the f32 β (exact in f32: what `1 - β` gives
 * on the device), so the vector holds β and 1 − β as the device would compute them.
 *
 * AdamW (torch.optim.AdamW's math: decoupled weight decay, bias correction), at update count t (1-based):
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p·(1 − lr·wd) − lr/(1−β1ᵗ) · m / (√v · 1/√(1−β2ᵗ) + ε)      (the decay factor only where decayMask says)
 */
import { blockUntilReady, fromHost, jit, np, type Tensor } from '../engine/index.js';

export type Tree = Record<string, Tensor>;
/** Per-tensor optimizer state by slot name (AdamW: `m`, `v` — the prefixes of optimizer.safetensors). */
export type OptState = Record<string, Tree>;

/** What the host knows about a step when it packs the step's scalars. */
export interface StepInfo {
  /** 1-based count of optimizer updates, this one included (AdamW's bias correction) */
  count: number;
  /** learning rate of this update (schedule.ts `lrAt`) */
  lr: number;
  /** global L2 norm of the (unclipped) gradients; needed only by a chain with clipByGlobalNorm */
  gradNorm?: number;
}

/**
 * The arithmetic a rule is written in: the Tensor methods it uses. A rule written against it runs traced on the
 * device (V = Tensor) and, through `compileHost`, as a host loop over Float32Arrays (V = a symbolic value that
 * records the same operations), so both executors run one rule.
 */
export interface Num<V> {
  readonly ref: V;
  mul(o: V | number): V;
  add(o: V | number): V;
  sub(o: V | number): V;
  div(o: V | number): V;
}
/** the free functions a rule uses (np.square, np.sqrt on the device) */
export interface NumOps<V> {
  square(x: V): V;
  sqrt(x: V): V;
}
const tensorOps: NumOps<Tensor> = { square: (x) => np.square(x), sqrt: (x) => np.sqrt(x) };

type Scalar<V = Tensor> = (i: number) => V;

/** A transform of one tensor's gradient; reads its own slice of the step's scalar vector. */
export interface GradientTransform {
  readonly kind: 'gradient';
  readonly nScalars: number;
  readonly needsGradNorm: boolean;
  scalars(s: StepInfo): number[];
  /** traced (or recorded for the host loop); consumes g */
  apply<V extends Num<V>>(g: V, sc: Scalar<V>, ops: NumOps<V>): V;
}

/** The last link of a chain: per-tensor state in, new parameter and state out. */
export interface UpdateRule {
  readonly kind: 'update';
  readonly slots: readonly string[];
  readonly nScalars: number;
  scalars(s: StepInfo): number[];
  /** which compiled variant a tensor uses (AdamW: whether it decays) */
  variant(name: string, shape: readonly number[]): boolean;
  /** traced (or recorded for the host loop); consumes p, g and the state tensors; returns [p', ...state'] in slot order */
  apply<V extends Num<V>>(p: V, g: V, state: V[], sc: Scalar<V>, variant: boolean, ops: NumOps<V>): V[];
}

/**
 * Global-norm clipping: g ← g·min(1, max/(‖g‖ + 1e-6)) with ‖g‖ the L2 norm over all tensors (`globalNormSq`,
 * measured by the caller and passed as StepInfo.gradNorm). maxNorm 0 switches it off (scale 1).
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransform {
  return {
    kind: 'gradient',
    nScalars: 1,
    needsGradNorm: maxNorm > 0,
    scalars(s) {
      if (maxNorm <= 0) return [1];
      if (s.gradNorm === undefined) throw new Error('clipByGlobalNorm: StepInfo.gradNorm is required');
      return [s.gradNorm > maxNorm ? maxNorm / (s.gradNorm + 1e-6) : 1];
    },
    apply: (g, sc) => g.mul(sc(0)),
  };
}

/** Σ‖g‖² over a tree, summed in the tree's key order (traced; consumes the tree). */
export function globalNormSq(g: Tree): Tensor {
  let s: Tensor | undefined;
  for (const v of Object.values(g)) s = s ? s.add(np.square(v).sum()) : np.square(v).sum();
  return s ?? np.zeros([]);
}

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWOptions extends AdamWConfig {
  /** which tensors get weight decay: the caller's choice (heed's default: `decays`) */
  decayMask: (name: string, shape: readonly number[]) => boolean;
  /**
   * Round 1 − β and 1 − lr·wd from f64 instead of from the f32 β / f32 lr·wd. Only for the hashed-feature
   * classifiers, whose shipped weights (data/ifs/*.safetensors) were trained that way and are reproduced byte
   * for byte; for β1 = 0.9 the two differ by 3 ulp (0x3dcccccd vs 0x3dccccd0).
   */
  f64Complements?: boolean;
}

/** heed's weight-decay mask: matrices decay; norms, biases, 1-D tensors and LoRA adapters do not. */
export function decays(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && !/norm|ln_/.test(name) && !name.includes('lora_');
}

// layout of AdamW's scalars
const STEP = 0, C2 = 1, DECAY = 2, B1 = 3, OMB1 = 4, B2 = 5, OMB2 = 6, EPS = 7;

export function adamw(o: AdamWOptions): UpdateRule {
  const f = Math.fround;
  const omb = (b: number) => (o.f64Complements ? 1 - b : 1 - f(b));
  return {
    kind: 'update',
    slots: ['m', 'v'],
    nScalars: 8,
    scalars({ lr, count: t }) {
      const decay = o.f64Complements ? 1 - f(lr * o.weightDecay) : 1 - lr * o.weightDecay;
      return [lr / (1 - o.beta1 ** t), 1 / Math.sqrt(1 - o.beta2 ** t), decay, o.beta1, omb(o.beta1), o.beta2, omb(o.beta2), o.eps];
    },
    variant: (name, shape) => o.decayMask(name, shape),
    apply(p, g, [m, v], sc, decay, ops) {
      const m2 = m.mul(sc(B1)).add(g.ref.mul(sc(OMB1)));
      const v2 = v.mul(sc(B2)).add(ops.square(g).mul(sc(OMB2)));
      const denom = ops.sqrt(v2.ref).mul(sc(C2)).add(sc(EPS));
      const p0 = decay ? p.mul(sc(DECAY)) : p;
      return [p0.sub(m2.ref.div(denom).mul(sc(STEP))), m2, v2];
    },
  };
}

/** A chain compiled per tensor, for use outside any jit: one small program per (shape, variant). */
export interface CompiledOptimizer {
  /** consumes params, grads and state; flushes every `flushEvery` parameters so old and new state never coexist in full */
  update(params: Tree, grads: Tree, state: OptState, scalars: Float32Array, flushEvery?: number): Promise<{ params: Tree; state: OptState }>;
  dispose(): void;
}

export interface Optimizer {
  readonly slots: readonly string[];
  /** whether scalars() needs StepInfo.gradNorm (the caller measures it with globalNormSq) */
  readonly needsGradNorm: boolean;
  /** zero state for every tensor of `params` (real buffers, not lazy zeros: allocated before the first step) */
  init(params: Tree): OptState;
  /** the step's scalar vector (host) */
  scalars(s: StepInfo): Float32Array;
  /** one tensor (traced); consumes p, g, state and s */
  updateTensor(name: string, p: Tensor, g: Tensor, state: Tensor[], s: Tensor): Tensor[];
  /** a whole tree (traced, e.g. inside a fused valueAndGrad + update jit); consumes params, grads, state and s */
  update(params: Tree, grads: Tree, state: OptState, s: Tensor): { params: Tree; state: OptState };
  compile(): CompiledOptimizer;
  /** the same chain as a host loop over Float32Arrays (heed train on the CPU: the state stays off the wasm heap) */
  compileHost(): HostOptimizer;
}

/** A chain run on the host, one tensor at a time, in place. */
export interface HostOptimizer {
  /**
   * p and the state arrays (slot order) are updated in place from g (read only) with the step's scalars
   * (`Optimizer.scalars`). Bit-identical to the device's compiled update (test/optimizer-host.test.ts).
   */
  update(name: string, shape: readonly number[], p: Float32Array, g: Float32Array, state: Float32Array[], scalars: Float32Array): void;
  /** the generated loop of a variant (for inspection, and to match a native twin) */
  source(variant: boolean): string;
  /** the variant a tensor uses (AdamW: whether it decays) */
  variant(name: string, shape: readonly number[]): boolean;
}

/**
 * A value of the host recorder: each operation of the rule becomes one line of a generated loop body, rounded to
 * f32 after every operation (Math.fround), as the wasm kernels round (wasm has no fused multiply-add). Both
 * operands are f32 values, so the f64 operation rounded once to f32 equals the f32 operation (+, −, ×, ÷ and √
 * are correctly rounded in f64 and 53 ≥ 2·24 + 2 bits makes the double rounding innocuous). `div` is recorded
 * as jax-js lowers it (a·(1/b): Array.div multiplies by the reciprocal) and `sub` as a − b (= a + (−b)).
 */
class Sym implements Num<Sym> {
  constructor(
    readonly e: string,
    private readonly lines: string[],
  ) {}
  get ref(): Sym {
    return this;
  }
  private emit(expr: string): Sym {
    const name = `t${this.lines.length}`;
    this.lines.push(`const ${name} = f(${expr});`);
    return new Sym(name, this.lines);
  }
  private static lit(o: Sym | number): string {
    return typeof o === 'number' ? `(${String(Math.fround(o))})` : o.e;
  }
  mul(o: Sym | number) {
    return this.emit(`${this.e} * ${Sym.lit(o)}`);
  }
  add(o: Sym | number) {
    return this.emit(`${this.e} + ${Sym.lit(o)}`);
  }
  sub(o: Sym | number) {
    return this.emit(`${this.e} - ${Sym.lit(o)}`);
  }
  div(o: Sym | number) {
    return this.emit(`${this.e} * f(1 / ${Sym.lit(o)})`);
  }
  square() {
    return this.emit(`${this.e} * ${this.e}`);
  }
  sqrt() {
    return this.emit(`Math.sqrt(${this.e})`);
  }
}
const symOps: NumOps<Sym> = { square: (x) => x.square(), sqrt: (x) => x.sqrt() };

type HostLoop = (f: (x: number) => number, p: Float32Array, g: Float32Array, st: Float32Array[], s: Float32Array) => void;

/** Gradient transforms in order, then the update rule. */
export function chain(...links: [...GradientTransform[], UpdateRule]): Optimizer {
  const rule = links.at(-1) as UpdateRule;
  const grads = links.slice(0, -1) as GradientTransform[];
  if (rule?.kind !== 'update' || grads.some((g) => g.kind !== 'gradient')) throw new Error('chain: gradient transforms first, one update rule last');
  const slots = rule.slots;
  const apply = (p: Tensor, g: Tensor, state: Tensor[], s: Tensor, variant: boolean) => {
    let off = 0;
    const at = (o: number): Scalar => (i) => s.ref.slice(o + i);
    for (const t of grads) {
      g = t.apply(g, at(off), tensorOps);
      off += t.nScalars;
    }
    const out = rule.apply(p, g, state, at(off), variant, tensorOps);
    s.dispose();
    return out;
  };
  const opt: Optimizer = {
    slots,
    needsGradNorm: grads.some((g) => g.needsGradNorm),
    init(params) {
      const st: OptState = Object.fromEntries(slots.map((k) => [k, {}]));
      for (const [k, t] of Object.entries(params)) for (const sl of slots) st[sl][k] = fromHost(new Float32Array(t.size), t.shape);
      return st;
    },
    scalars: (s) => Float32Array.from([...grads.flatMap((g) => g.scalars(s)), ...rule.scalars(s)]),
    updateTensor: (name, p, g, state, s) => apply(p, g, state, s, rule.variant(name, p.shape)),
    update(params, gr, state, s) {
      const np_: Tree = {};
      const ns: OptState = Object.fromEntries(slots.map((k) => [k, {}]));
      for (const k of Object.keys(params)) {
        const [p2, ...st] = opt.updateTensor(k, params[k], gr[k], slots.map((sl) => state[sl][k]), s.ref);
        np_[k] = p2;
        slots.forEach((sl, i) => (ns[sl][k] = st[i]));
      }
      s.dispose();
      return { params: np_, state: ns };
    },
    compile() {
      const progs = new Map<boolean, ReturnType<typeof jit>>();
      const prog = (variant: boolean) => {
        let f = progs.get(variant);
        if (!f) progs.set(variant, (f = jit((p: Tensor, g: Tensor, st: Tensor[], s: Tensor) => apply(p, g, st, s, variant))));
        return f;
      };
      return {
        async update(params, gr, state, scalars, flushEvery = 16 * 2 ** 20) {
          const np_: Tree = {};
          const ns: OptState = Object.fromEntries(slots.map((k) => [k, {}]));
          let queued = 0;
          for (const k of Object.keys(params)) {
            const p = params[k];
            const [p2, ...st] = prog(rule.variant(k, p.shape))(p, gr[k], slots.map((sl) => state[sl][k]), fromHost(scalars, [scalars.length])) as Tensor[];
            np_[k] = p2;
            slots.forEach((sl, i) => (ns[sl][k] = st[i]));
            // jax-js frees the old p, state and g only when the queued update has run: flush every ~64 MB of
            // parameters so the old and new state never coexist in full (full fine-tuning of 135M would not fit)
            queued += p2.size;
            if (queued >= flushEvery) {
              await p2.blockUntilReady();
              queued = 0;
            }
          }
          await blockUntilReady([np_, ns]);
          return { params: np_, state: ns };
        },
        dispose: () => progs.forEach((f) => f.dispose()),
      };
    },
    compileHost() {
      const loops = new Map<boolean, { src: string; fn: HostLoop }>();
      const loop = (variant: boolean) => {
        let l = loops.get(variant);
        if (!l) {
          // record the chain once: gradient transforms, then the rule, on symbolic per-element values
          const lines: string[] = [];
          const sc = (o: number) => (i: number) => new Sym(`c${o + i}`, lines);
          let g = new Sym('gi', lines);
          let off = 0;
          for (const t of grads) {
            g = t.apply(g, sc(off), symOps);
            off += t.nScalars;
          }
          const out = rule.apply(new Sym('pi', lines), g, slots.map((_, j) => new Sym(`s${j}i`, lines)), sc(off), variant, symOps);
          const nSc = off + rule.nScalars;
          const src = [
            ...Array.from({ length: nSc }, (_, i) => `const c${i} = s[${i}];`),
            ...slots.map((_, j) => `const s${j} = st[${j}];`),
            'for (let i = 0, n = p.length; i < n; i++) {',
            '  const pi = p[i], gi = g[i];',
            ...slots.map((_, j) => `  const s${j}i = s${j}[i];`),
            ...lines.map((x) => '  ' + x),
            `  p[i] = ${out[0].e};`,
            ...slots.map((_, j) => `  s${j}[i] = ${out[j + 1].e};`),
            '}',
          ].join('\n');
          l = { src, fn: new Function('f', 'p', 'g', 'st', 's', src) as HostLoop };
          loops.set(variant, l);
        }
        return l;
      };
      return {
        update(name, shape, p, g, state, scalars) {
          if (g.length !== p.length || state.some((x) => x.length !== p.length)) throw new Error(`host optimizer: ${name}: sizes differ`);
          loop(rule.variant(name, shape)).fn(Math.fround, p, g, state, scalars);
        },
        source: (variant) => loop(variant).src,
        variant: (name, shape) => rule.variant(name, shape),
      };
    },
  };
  return opt;
}
