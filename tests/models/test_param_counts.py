"""Parameter counts of the 32 px ResNets against the authors' architectures, each reference
number computed by hand from the layer shapes of the authors' code (not from our modules).

Shapes used below (weights + biases; BatchNorm: scale + shift; spectral norm adds buffers,
not parameters):
  conv k x k, cin -> cout, with bias:  cin * cout * k * k + cout
  3 x 3, 256 -> 256: 589,824 + 256 = 590,080     1 x 1, 256 -> 256: 65,536 + 256 = 65,792
  3 x 3, 128 -> 128: 147,456 + 128 = 147,584     1 x 1, 128 -> 128: 16,384 + 128 = 16,512
  3 x 3,   3 -> 128:   3,456 + 128 =   3,584     1 x 1,   3 -> 128:    384 + 128 =    512
  3 x 3, 256 ->   3:   6,912 +   3 =   6,915     3 x 3, 128 ->   3:  3,456 +   3 =   3,459
"""
from __future__ import annotations

import pytest

from ganbench.models import create_model


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# sngan_projection gen_models/resnet_32.py (ch 256, bottom_width 4, dim_z 128), unconditional:
#   l1 Linear(128, 4*4*256):            128 * 4,096 + 4,096                         =   528,384
#   3 x Block(256, 256, upsample): BN 512 + c1 590,080 + BN 512 + c2 590,080 + c_sc 65,792
#                                  = 1,246,976 each                                 = 3,740,928
#   b5 BN(256) 512 + c5 conv 3x3 256 -> 3 6,915                                     =     7,427
SNGAN_RESNET_G = 528_384 + 3_740_928 + 7_427  # 4,276,739
# dis_models/snresnet_32.py (ch 128), n_classes 0:
#   OptimizedBlock(3, 128): c1 3,584 + c2 147,584 + c_sc 512                         =   151,680
#   Block(128, 128, downsample): c1 147,584 + c2 147,584 + c_sc 16,512               =   311,680
#   2 x Block(128, 128) without downsampling (identity shortcut): 2 * 295,168        =   590,336
#   l5 SNLinear(128, 1, nobias=True)                                                 =       128
SNGAN_RESNET_D = 151_680 + 311_680 + 590_336 + 128  # 1,053,824
# projection D on CIFAR-10 (sn_cifar10.yml: ch 128, n_classes 10): + l_y SNEmbedID(10, 128)
PROJECTION_D_128 = SNGAN_RESNET_D + 10 * 128  # 1,055,104
# the same D 256 wide (the old cifar10 default), psi without a bias:
#   7,168 + 590,080 + 1,024 | 2 * 590,080 + 65,792 | 4 * 590,080 | 256 | 10 * 256
PROJECTION_D_256 = 598_272 + 1_245_952 + 2_360_320 + 256 + 2_560  # 4,207,360
# resnet_32.py with n_classes 10: each BN of the blocks is a categorical conditional BN with
# two EmbedID(10, 256) (5,120 params) instead of scale + shift (512): 6 * (5,120 - 512) more
PROJECTION_G_256 = SNGAN_RESNET_G + 6 * (5_120 - 512)  # 4,304,387
# improved_wgan_training gan_cifar_resnet.py (DIM_G = DIM_D = 128, unconditional):
#   Generator.Input Linear(128, 4*4*128): 128 * 2,048 + 2,048                        =   264,192
#   3 x ResidualBlock up: N1 256 + Conv1 147,584 + N2 256 + Conv2 147,584 + Shortcut 16,512
#                         = 312,192 each                                             =   936,576
#   OutputN BN 256 + Output conv 3x3 128 -> 3 3,459                                  =     3,715
WGAN_GP_RESNET_G = 264_192 + 936_576 + 3_715  # 1,204,483
#   the critic's blocks are SNGAN's D blocks (no normalisation) + Output Linear(128, 1) with bias
WGAN_GP_RESNET_D = 151_680 + 311_680 + 590_336 + 129  # 1,053,825


def test_sngan_cifar10_resnet_matches_the_authors_resnet_32_and_snresnet_32():
    model = create_model("sngan", dataset="cifar10")
    assert count(model.generator) == SNGAN_RESNET_G == 4_276_739
    assert count(model.discriminator) == SNGAN_RESNET_D == 1_053_824


def test_projection_cifar10_d_is_128_wide_as_sn_cifar10_yml():
    model = create_model("cgan-pd", dataset="cifar10")
    assert count(model.generator) == PROJECTION_G_256 == 4_304_387
    assert count(model.discriminator) == PROJECTION_D_128 == 1_055_104
    wide = create_model("cgan-pd", dataset="cifar10", d_channels=256)
    assert count(wide.discriminator) == PROJECTION_D_256 == 4_207_360  # the ~4.2M the issue reported


def test_wgan_gp_cifar10_resnet_matches_gan_cifar_resnet_py():
    model = create_model("wgan-gp", dataset="cifar10")
    assert count(model.generator) == WGAN_GP_RESNET_G == 1_204_483
    assert count(model.critic) == WGAN_GP_RESNET_D == 1_053_825
