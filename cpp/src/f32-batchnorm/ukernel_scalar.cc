// Batch-norm run loops (ukernels.h) compiled for the scalar path.
#define EO_BN_ISA scalar
#define EO_BN_LANES 8
#include "f32-batchnorm/loops.inc"
