/**
 * The forward pass, once for every supported architecture, written against the backend op
 * interface (../backend/ops.ts). It reads top to bottom like llama.cpp's graph builders
 * (src/models/<arch>.cpp) and like the float64 reference (src/testing/reference-forward.ts),
 * op for op: embeddings; per layer norm, q/k/v, q/k norms, rope, KV write, attention, output
 * projection, post-norm, residual, norm, gated FFN, post-norm, residual; final norm; logits,
 * softcap, divisor. Architecture differences are flags of {@link ModelConfig} and optional
 * weights, never copies of the loop.
 *
 * Every intermediate is named as llama.cpp's `cb(cur, name, il)` and passed to `tap`; without a
 * tap that costs nothing, with one it reads the tensor back (a debug run), so a wrong layer can be
 * found against a reference dump.
 *
 * Without a tap, ops that always follow each other run fused (fewer GPU dispatches per layer):
 * a block's residual add with the RMSNorm after it (`addNorm`: the FFN's residual joins x in the
 * next layer's attention norm, the last one in the final norm), and RoPE of q and k with the KV
 * write (`ropeKvWrite`). A tap reads the intermediates between them, so a debug run keeps the
 * ops separate; both orders compute the same values. A [gate; up] projection (phi3's, or q|k|v
 * and gate|up stacked by the loader: stacking.ts) always goes through `gluMatmul`, whose GLU the
 * GPU applies as it stores the products.
 */
import type { Backend, RopeOp, Rows, Vector } from '../backend/ops.ts';
import type { ModelConfig } from './config.ts';
import type { KvCache } from './kv-cache.ts';
import type { ModelWeights, Scratch } from './loader.ts';
import { adapts, addLoraDeltas, addLoraEmbeddings, type ActiveLora } from './lora/apply.ts';
import { moeFfnOp } from './moe-ffn.ts';
import type { LayerState, RecurrentState } from './recurrent-state.ts';

/**
 * Observes an intermediate: `layer` is -1 outside the layer loop; `data` is [tokens][width], read
 * back from the backend (names as the reference's taps).
 */
export type ForwardTap = (name: string, layer: number, data: Float32Array, width: number) => void;

export interface ForwardState {
  backend: Backend;
  config: ModelConfig;
  weights: ModelWeights;
  scratch: Scratch;
  kv: KvCache;
  /** LoRA adapters applied on top of the base weights (lora/apply.ts); none: the base model. */
  adapters?: readonly ActiveLora[] | undefined;
  /** A hybrid's recurrent layers' state (recurrent-state.ts); undefined for a transformer. */
  recurrent?: RecurrentState | undefined;
}

/**
 * Records one step for `tokens` (at most `scratch.batch`) at the cache's next positions, and the
 * logits of rows `logitsFrom ..< tokens.length` into `scratch.logits` rows 0, 1, ... Returns the
 * number of logit rows. The caller submits (or samples first); the cache is advanced here.
 * A number instead of ids: that many ids already in `scratch.tokens` on the device (a decode
 * loop samples each token straight into it).
 */
export async function forward(state: ForwardState, tokens: readonly number[] | number, logitsFrom: number, tap?: ForwardTap): Promise<number> {
  const { backend: b, config: c, weights: w, scratch: s, kv } = state;
  const n = typeof tokens === 'number' ? tokens : tokens.length;
  if (n < 1 || n > s.batch) throw new RangeError(`a step takes 1..${s.batch} tokens, got ${n}`);
  if (!Number.isInteger(logitsFrom) || logitsFrom < 0 || logitsFrom > n) throw new RangeError(`logitsFrom ${logitsFrom} outside 0..${n}`);
  if (typeof tokens !== 'number') {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} outside the vocabulary of ${c.nVocab}`);
    }
  }
  kv.checkRoom(n);
  const start = kv.length;
  const kvLength = start + n;
  const { nEmbd: E, nHead, nHeadKv, headDimK, headDimV, qDim, kvDimK, kvDimV, normEps: eps } = c;
  const see = async (name: string, layer: number, r: Rows, width: number, rows = n) => {
    if (!tap) return;
    const all = await b.read(r.t, (rows - 1) * r.stride + width, r.offset ?? 0);
    const data = new Float32Array(rows * width);
    for (let t = 0; t < rows; t++) data.set(all.subarray(t * r.stride, t * r.stride + width), t * width);
    tap(name, layer, data, width);
  };

  b.begin();
  if (typeof tokens !== 'number') b.writeIds(s.tokens, Uint32Array.from(tokens));
  b.writeIds(s.positions, Uint32Array.from({ length: n }, (_, i) => start + i));

  // Residual stream x [n][nEmbd]; cur [n][nEmbd] holds norm outputs and block outputs.
  const x: Rows = { t: s.x, stride: E };
  const cur: Rows = { t: s.cur, stride: E };
  const attn: Rows = { t: s.attn, stride: nHead * headDimV };

  // Token embeddings (gemma: times sqrt(n_embd); granite: times embedding_scale).
  b.embed(w.tokenEmbd, s.tokens, x, n, c.embeddingScale);
  const adapters = state.adapters?.length ? state.adapters : undefined;
  if (adapters) addLoraEmbeddings(b, adapters, s.tokens, x, n, c.embeddingScale);
  /** s * B (A x) of each adapter of block tensor `name` (attn_q...) into out, after its base matmul. */
  const lora = (il: number, name: string, input: Rows, out: Rows, rows = n) => {
    if (adapters) addLoraDeltas(b, adapters, il < 0 ? `${name}.weight` : `blk.${il}.${name}.weight`, input, out, rows);
  };
  await see('inp_embd', -1, x, E);

  const fuse = !tap;
  /** cur holds a block output that has not joined x yet (fused: it does in the next norm). */
  let pending = false;
  /** The residual (if one is pending), then cur = RMSNorm(x rows) * weight. */
  const residualNorm = (xRows: Rows, rows: number, weight: Vector) => {
    if (pending) b.addNorm(xRows, cur, E, rows, eps, weight, c.residualScale);
    else b.norm('rms', xRows, cur, E, rows, eps, weight);
    pending = false;
  };
  /** The block output in cur joins x now, or (fused) in the next norm. */
  const blockDone = async (tapName: string, il: number) => {
    if (fuse) pending = true;
    else {
      residual(b, c, x, cur, n);
      await see(tapName, il, x, E);
    }
  };

  for (let il = 0; il < c.nLayer; il++) {
    const lw = w.layers[il]!;
    const layer = c.layers[il]!;
    const swa = layer.slidingWindow;

    residualNorm(x, n, lw.attnNorm);
    await see('attn_norm', il, cur, E);
    if (layer.mixer !== 'attention') {
      // --- a hybrid's recurrent mixer in place of attention, then the same residual and FFN
      const st = state.recurrent!.layer(il)!;
      if (layer.mixer === 'ssm') mamba2Mixer(b, c, lw, s, st, cur, n);
      else shortConvMixer(b, c, lw, s, st, cur, n);
      await see(layer.mixer === 'ssm' ? 'ssm_out' : 'shortconv_out', il, cur, E);
    } else {
      // --- attention: q/k/v (fused or stacked at load: one projection, split as q | k | v by row views)
      let q: Rows, k: Rows, v: Rows;
      if (lw.qkv) {
        const width = qDim + kvDimK + kvDimV;
        b.matmul(lw.qkv, cur, { t: s.qkv!, stride: width }, n, lw.qkvBias);
        q = { t: s.qkv!, stride: width, offset: 0 };
        k = { t: s.qkv!, stride: width, offset: qDim };
        v = { t: s.qkv!, stride: width, offset: qDim + kvDimK };
        // v apart where its format is not q's and k's (the loader stacked q | k only): its own rows.
        if (lw.v) b.matmul(lw.v, cur, v, n, lw.vBias);
        // The file's fused projection, or the parts the loader stacked: adapters name the file's tensors.
        lora(il, 'attn_qkv', cur, { t: s.qkv!, stride: width }, n);
        lora(il, 'attn_q', cur, q);
        lora(il, 'attn_k', cur, k);
        lora(il, 'attn_v', cur, v);
      } else {
        q = { t: s.q!, stride: qDim };
        k = { t: s.k!, stride: kvDimK };
        v = { t: s.v!, stride: kvDimV };
        b.matmul(lw.q!, cur, q, n, lw.qBias);
        b.matmul(lw.k!, cur, k, n, lw.kBias);
        b.matmul(lw.v!, cur, v, n, lw.vBias);
        lora(il, 'attn_q', cur, q);
        lora(il, 'attn_k', cur, k);
        lora(il, 'attn_v', cur, v);
      }
      await see('Qcur', il, q, qDim);
      await see('Kcur', il, k, kvDimK);
      await see('Vcur', il, v, kvDimV);

      // --- per-head RMS norms of q and k (qwen3, gemma3): every head is a row of headDimK
      if (lw.qNorm && lw.kNorm) {
        // olmoe normalizes each token's whole q and k row instead.
        const row = c.qkNormOver === 'row';
        const qHeads: Rows = { t: s.q!, stride: row ? qDim : headDimK };
        const kHeads: Rows = { t: s.k!, stride: row ? kvDimK : headDimK };
        b.norm('rms', qHeads, qHeads, qHeads.stride, row ? n : n * nHead, eps, lw.qNorm);
        b.norm('rms', kHeads, kHeads, kHeads.stride, row ? n : n * nHeadKv, eps, lw.kNorm);
        await see('Qcur_normed', il, q, qDim);
        await see('Kcur_normed', il, k, kvDimK);
      }

      // --- rope (sliding-window layers have their own base and scale: gemma3), store k and v at
      // their positions, then attend over positions [0, kvLength)
      const rope = c.rope.enabled ? ropeOp(c, swa, w) : undefined;
      const kvLayer = layer.kvLayer;
      if (rope && fuse) b.ropeKvWrite(kv.storage, kvLayer, q, k, v, nHead, s.positions, n, rope);
      else {
        if (rope) {
          b.rope(q, n, nHead, headDimK, s.positions, rope);
          b.rope(k, n, nHeadKv, headDimK, s.positions, rope);
          await see('Qcur_rope', il, q, qDim);
          await see('Kcur_rope', il, k, kvDimK);
        }
        b.kvWrite(kv.storage, kvLayer, k, v, s.positions, n);
      }
      b.attention(kv.storage, kvLayer, q, attn, s.positions, n, nHead, kvLength, {
        scale: c.attentionScale,
        softcap: c.attnSoftcap,
        window: swa ? c.slidingWindow : 0,
      });
      await see('kqv_out', il, attn, nHead * headDimV);

      // --- output projection, post-norm (gemma), residual (granite: scaled)
      b.matmul(lw.attnOutput!, attn, cur, n, lw.attnOutputBias);
      lora(il, 'attn_output', attn, cur);
      await see('attn_out', il, cur, E);
      if (lw.postAttnNorm) {
        b.norm('rms', cur, cur, E, n, eps, lw.postAttnNorm);
        await see('attn_post_norm', il, cur, E);
      }
    }
    await blockDone('ffn_inp', il);
    // mamba2's blocks end with the mixer.
    if (layer.nFf === 0) continue;

    // --- FFN: norm, gate and up (one [gate; up] projection: phi3's, or stacked at load), GLU, down
    const nFf = layer.nFf;
    residualNorm(x, n, lw.ffnNorm!);
    await see('ffn_norm', il, cur, E);
    if (c.moe) {
      // Mixture of experts: the router picks each token's experts; their FFNs (and a shared one) sum into moeOut.
      // (Adapters on expert tensors are refused at adapter load: llama.cpp's build_lora_mm_id is not built here.)
      const out: Rows = { t: s.moeOut!, stride: E };
      b.moeFfn!(cur, out, n, moeFfnOp(c.moe, c.activation, lw, s));
      b.scale(out, cur, E, n, 1);
    } else {
      const ffh: Rows = { t: s.ffh, stride: nFf };
      if (lw.ffnGate) {
        const gate: Rows = { t: s.gate, stride: nFf };
        const up: Rows = { t: s.up!, stride: nFf };
        b.matmul(lw.ffnUp!, cur, up, n, lw.ffnUpBias);
        b.matmul(lw.ffnGate, cur, gate, n, lw.ffnGateBias);
        lora(il, 'ffn_up', cur, up);
        lora(il, 'ffn_gate', cur, gate);
        b.glu(c.activation, gate, up, ffh, nFf, n);
      } else if (adapters && (adapts(adapters, `blk.${il}.ffn_up.weight`) || adapts(adapters, `blk.${il}.ffn_gate.weight`))) {
        // An adapted [gate; up]: the product is stored, the deltas join its halves, then the GLU
        // (the file's fused ffn_up covers both halves; a stacked gate and up, one each).
        const gateUp: Rows = { t: s.gate, stride: 2 * nFf };
        b.matmul(lw.ffnUp!, cur, gateUp, n, lw.ffnUpBias);
        if (c.fusedGateUp) lora(il, 'ffn_up', cur, gateUp);
        else {
          lora(il, 'ffn_gate', cur, { t: s.gate, stride: 2 * nFf, offset: 0 });
          lora(il, 'ffn_up', cur, { t: s.gate, stride: 2 * nFf, offset: nFf });
        }
        b.glu(c.activation, { t: s.gate, stride: 2 * nFf, offset: 0 }, { t: s.gate, stride: 2 * nFf, offset: nFf }, ffh, nFf, n);
      } else {
        // [gate; up] in one matrix (phi3's, or stacked at load): the GLU applied as it is stored.
        b.gluMatmul(c.activation, lw.ffnUp!, cur, { t: s.gate, stride: 2 * nFf }, ffh, n, lw.ffnUpBias);
      }
      await see('ffn_act', il, ffh, nFf);
      b.matmul(lw.ffnDown!, ffh, cur, n, lw.ffnDownBias);
      lora(il, 'ffn_down', ffh, cur);
    }
    await see('ffn_out', il, cur, E);
    if (lw.postFfnNorm) {
      b.norm('rms', cur, cur, E, n, eps, lw.postFfnNorm);
      await see('ffn_post_norm', il, cur, E);
    }
    await blockDone('l_out', il);
  }

  // --- final norm of the rows whose logits are wanted, logits (tied: token_embd), output bias,
  // softcap (gemma2), divisor (granite)
  const rows = n - logitsFrom;
  // The last residual, fused with the final norm when that covers every row (decode).
  if (pending && (rows === 0 || logitsFrom > 0)) {
    residual(b, c, x, cur, n);
    pending = false;
  }
  if (rows > 0) {
    const logits: Rows = { t: s.logits, stride: c.nVocab };
    residualNorm({ t: s.x, stride: E, offset: logitsFrom * E }, rows, w.outputNorm);
    await see('result_norm', -1, cur, E, rows);
    b.matmul(w.output, cur, logits, rows, w.outputBias);
    lora(-1, 'output', cur, logits, rows);
    if (c.finalSoftcap) b.softcap(logits, c.nVocab, rows, c.finalSoftcap);
    if (c.logitDivisor !== 1) b.scale(logits, logits, c.nVocab, rows, 1 / c.logitDivisor);
    await see('result_output', -1, logits, c.nVocab, rows);
  }
  kv.advance(n);
  // A prefill chunk's end is a point a later turn may come back to (recurrent-state.ts).
  if (state.recurrent && n > 1) state.recurrent.recordSnapshot(kv.length);
  return rows;
}

/**
 * A Mamba2 mixer (llama.cpp's build_mamba2_layer) of `cur` rows into cur: ssm_in [z | x B C | dt],
 * the causal conv of x B C with its bias and SiLU, the selective scan with the D skip, the gated
 * group norm with z, ssm_out.
 */
function mamba2Mixer(b: Backend, c: ModelConfig, lw: ModelWeights['layers'][number], s: Scratch, st: LayerState, cur: Rows, n: number): void {
  const { inner, convDim, heads, headDim, stateSize, groups, convKernel } = c.ssm!;
  const width = inner + convDim + heads;
  const proj = (offset: number): Rows => ({ t: s.ssmProj!, stride: width, offset });
  const xbc = (offset: number): Rows => ({ t: s.ssmXbc!, stride: convDim, offset });
  const y: Rows = { t: s.ssmY!, stride: inner };
  b.matmul(lw.ssmIn!, cur, proj(0), n);
  b.ssmConv!(proj(inner), xbc(0), n, { channels: convDim, kernel: convKernel, weight: lw.ssmConv1d!, bias: lw.ssmConv1dBias, silu: true, state: st.conv });
  b.ssmScan!(xbc(0), proj(inner + convDim), xbc(inner), xbc(inner + groups * stateSize), y, n, {
    heads, headDim, stateSize, groups, A: lw.ssmA!, D: lw.ssmD!, dtBias: lw.ssmDtBias!, state: st.scan!,
  });
  b.gatedNorm!(y, proj(0), inner, n, groups, c.normEps, lw.ssmNorm!);
  b.matmul(lw.ssmOut!, y, cur, n);
}

/**
 * LFM2's gated short convolution (llama.cpp's build_shortconv_block) of `cur` rows into cur:
 * in_proj [b | c | x], then out_proj (c * conv(b * x)).
 */
function shortConvMixer(b: Backend, c: ModelConfig, lw: ModelWeights['layers'][number], s: Scratch, st: LayerState, cur: Rows, n: number): void {
  const E = c.nEmbd;
  const proj = (offset: number): Rows => ({ t: s.convProj!, stride: 3 * E, offset });
  const convIn: Rows = { t: s.convIn!, stride: E };
  const convOut: Rows = { t: s.convOut!, stride: E };
  b.matmul(lw.shortConvIn!, cur, proj(0), n);
  b.mul!(proj(0), proj(2 * E), convIn, E, n);
  b.ssmConv!(convIn, convOut, n, { channels: E, kernel: c.shortConvWidth, weight: lw.shortConvKernel!, silu: false, state: st.conv });
  b.mul!(proj(E), convOut, convOut, E, n);
  b.matmul(lw.shortConvOut!, convOut, cur, n);
}

/** x += cur * residualScale (granite scales each block's output; 1 elsewhere). */
function residual(b: Backend, c: ModelConfig, x: Rows, cur: Rows, n: number): void {
  if (c.residualScale !== 1) b.scale(cur, cur, c.nEmbd, n, c.residualScale);
  b.add(x, cur, x, c.nEmbd, n);
}

function ropeOp(c: ModelConfig, swa: boolean, w: ModelWeights): RopeOp {
  return {
    mode: c.rope.type,
    nRot: c.rope.nRot,
    freqBase: swa ? c.rope.freqBaseSwa : c.rope.freqBase,
    freqScale: swa ? c.rope.freqScaleSwa : c.rope.freqScale,
    extFactor: c.rope.extFactor,
    attnFactor: c.rope.attnFactor,
    betaFast: c.rope.betaFast,
    betaSlow: c.rope.betaSlow,
    origCtx: c.rope.nCtxOrig,
    factors: w.ropeFactors,
  };
}
