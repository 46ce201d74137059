/**
 * State-space hybrids (mamba2, lfm2, granitehybrid) on the CPU backend: tests/model/hybrid-harness.ts
 * against llama.cpp and the float64 references, with f32 activations (the exact path) and with the
 * default 8-bit-activation matmuls on the quantized files. Figures are "[hybrid cpu]" lines.
 */
import { describeHybridForward, HYBRID_CASES } from './hybrid-harness.ts';
import { CpuBackend } from '../../src/engine/backend/cpu/backend.ts';

describeHybridForward('cpu', () => CpuBackend.create({ relaxed: false, quantizedActivations: false }));
// The default CPU path rounds activations to 8 bits as llama.cpp's does: held to the same bars on the quantized files.
describeHybridForward('cpu q8 activations', () => CpuBackend.create({ relaxed: false }), HYBRID_CASES.filter((c) => c.options.quant), false);
