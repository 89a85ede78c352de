// Batch-norm run loops (ukernels.h) compiled for the avx2 path.
#define EO_BN_ISA avx2
#define EO_BN_LANES 8
#include "f32-batchnorm/loops.inc"
