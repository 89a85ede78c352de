// Batch-norm run loops (ukernels.h) compiled for the avx512 path.
#define EO_BN_ISA avx512
#define EO_BN_LANES 16
#include "f32-batchnorm/loops.inc"
