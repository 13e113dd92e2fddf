"""A PyTorch MobileNetV2 with torchvision's module layout, as the reference
for the pretrained-weights parity test. torchvision from the package index
does not import beside the pinned CPU torch here, so this is torchvision's
architecture (Sandler et al. 2018; torchvision.models.mobilenetv2) written
out: same modules, same state-dict keys, symmetric padding, BatchNorm eps 1e-5."""

import torch
from torch import nn

# expand, channels, repeats, stride  (Sandler et al. 2018, Table 2)
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]


def conv_bn_relu6(cin, cout, kernel=3, stride=1, groups=1):
    """Conv2d (no bias, symmetric padding ``(kernel - 1) // 2``), BatchNorm2d, ReLU6.

    Args:
        cin: input channels.
        cout: output channels.
        kernel: square kernel size.
        stride: stride of the convolution.
        groups: convolution groups (``cin`` for a depthwise conv).

    Returns:
        torch.nn.Sequential: keys ``0`` (conv), ``1`` (batch norm), ``2``.
    """
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion (skipped when ``expand`` is 1),
    3x3 depthwise, linear 1x1 projection; a residual add when the stride is
    1 and the channels match.

    Args:
        cin: input channels.
        cout: output channels.
        stride: stride of the depthwise conv (1 or 2).
        expand: expansion factor of the hidden channels, ``cin * expand``.
    """

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [conv_bn_relu6(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        """The block on an NCHW float tensor.

        Args:
            x: (N, cin, H, W) tensor.

        Returns:
            torch.Tensor: (N, cout, H / stride, W / stride), rounded up.
        """
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with torchvision's module names and state-dict keys.

    Args:
        num_classes: outputs of the final linear layer.
    """

    def __init__(self, num_classes=1000):
        super().__init__()
        layers, cin = [conv_bn_relu6(3, 32, 3, 2)], 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        """Logits of a batch of NCHW images.

        Args:
            x: (N, 3, H, W) float tensor, already normalised (224 x 224 for
                the ImageNet weights).

        Returns:
            torch.Tensor: (N, num_classes) logits; the dropout (p = 0.2)
            before the linear layer acts only in train mode.
        """
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))
