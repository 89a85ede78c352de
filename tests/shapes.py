"""The shapes kernels are tested and benchmarked on: one list, read by the kernel tests
(tests/kernels/test_conv_kernels.py, tests/kernels/test_qs8_gemm.py, at a small batch) and by the
benchmarks (benchmarks/bench_conv_shapes.py, benchmarks/bench_qs8_gemm.py, which put tests/ on
sys.path). Edge sizes (1..10, 15/16/17, 31/32/33, 63/64/65) stay in the tests that sweep them.

- conv: every distinct conv of CIFAR ResNet-20, of MobileNetV1 and MobileNetV2 (CIFAR variants, 32x32
  input) and of VGG-11 (32x32 input), as
  (N, Cin, H, W, Cout, k, stride, pad, groups, need_dx) -> how often it occurs in the network;
  need_dx is False for the stem (no input gradient).
- qs8 GEMM: (name, M, N, K): a 1024^3 square (a throughput reference, not a layer), ResNet-20's
  3x3 convs as GEMMs at batch 1 and MobileNetV2's 1x1 convs at 224x224.
"""
from collections import Counter


def resnet20_conv_shapes(batch=128):
    """(N, Cin, H, W, Cout, k, stride, pad, groups, need_dx) -> count."""
    c = Counter()
    c[(batch, 3, 32, 32, 16, 3, 1, 1, 1, False)] += 1  # stem: no input gradient
    h, cin = 32, 16
    for cout in (16, 32, 64):
        for i in range(3):
            s = 2 if (i == 0 and cout != cin) else 1
            c[(batch, cin, h, h, cout, 3, s, 1, 1, True)] += 1
            if s == 2:
                c[(batch, cin, h, h, cout, 1, 2, 0, 1, True)] += 1  # projection shortcut
                h //= 2
            c[(batch, cout, h, h, cout, 3, 1, 1, 1, True)] += 1
            cin = cout
    return c


def mobilenetv2_conv_shapes(batch=32):
    c = Counter()
    c[(batch, 3, 32, 32, 32, 3, 1, 1, 1, False)] += 1
    cfg = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]
    h, cin = 32, 32
    for t, cout, n, s in cfg:
        for i in range(n):
            stride = s if i == 0 else 1
            hid = cin * t
            if t != 1:
                c[(batch, cin, h, h, hid, 1, 1, 0, 1, True)] += 1
            c[(batch, hid, h, h, hid, 3, stride, 1, hid, True)] += 1
            h = (h + 2 - 3) // stride + 1
            c[(batch, hid, h, h, cout, 1, 1, 0, 1, True)] += 1
            cin = cout
    c[(batch, cin, h, h, 1280, 1, 1, 0, 1, True)] += 1
    return c


def mobilenetv1_conv_shapes(batch=64):
    """MobileNetV1, CIFAR variant (stem stride 1, 32x32 input): depthwise 3x3 + pointwise pairs."""
    c = Counter()
    c[(batch, 3, 32, 32, 32, 3, 1, 1, 1, False)] += 1
    h, cin = 32, 32
    for cout, s in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + ((1024, 2), (1024, 1)):
        c[(batch, cin, h, h, cin, 3, s, 1, cin, True)] += 1
        h = (h + 2 - 3) // s + 1
        c[(batch, cin, h, h, cout, 1, 1, 0, 1, True)] += 1
        cin = cout
    return c


def vgg11_conv_shapes(batch=128):
    c = Counter()
    h, cin = 32, 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            h //= 2
            continue
        c[(batch, cin, h, h, v, 3, 1, 1, 1, cin != 3)] += 1
        cin = v
    return c


QS8_GEMM_SHAPES = [("square 1024^3", 1024, 1024, 1024)]
# resnet20 (CIFAR, 32x32): (name, M = HW, N = Cout, K = Cin*9), each distinct shape once
QS8_GEMM_SHAPES += [("resnet20 conv1 3->16 @32", 1024, 16, 27),
                    ("resnet20 s1 16->16 @32", 1024, 16, 144),
                    ("resnet20 s2 16->32 @16", 256, 32, 144),
                    ("resnet20 s2 32->32 @16", 256, 32, 288),
                    ("resnet20 s3 32->64 @8", 64, 64, 288),
                    ("resnet20 s3 64->64 @8", 64, 64, 576)]
# mobilenet_v2 (224x224) pointwise convs: (name, M = HW, N = Cout, K = Cin)
QS8_GEMM_SHAPES += [("mbv2 expand 16->96 @112", 12544, 96, 16),
                    ("mbv2 expand 24->144 @56", 3136, 144, 24),
                    ("mbv2 project 144->24 @56", 3136, 24, 144),
                    ("mbv2 expand 32->192 @28", 784, 192, 32),
                    ("mbv2 expand 64->384 @14", 196, 384, 64),
                    ("mbv2 expand 96->576 @14", 196, 576, 96),
                    ("mbv2 expand 160->960 @7", 49, 960, 160),
                    ("mbv2 last 320->1280 @7", 49, 1280, 320)]
