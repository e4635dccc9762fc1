"""The spiking U-Net's neurons must receive unit-scale membrane input at initialisation: the MA
attention's sigmoid gates (each in (0, 1)) shrink whatever they multiply, so a gate after the BN
left the LIF layers silent (firing rates < 2%) and the SNN barely trained."""

from __future__ import annotations

import torch

from spikedrive.models.depth import spiking_unet_depth
from spikedrive.neurons import LIF


def test_every_lif_layer_gets_unit_scale_input_with_attention():
    torch.manual_seed(0)
    model = spiking_unet_depth(T=3, base=4, levels=2, attention=True).train()
    stds: dict[str, float] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, LIF):
            mod.register_forward_hook(lambda m, i, o, name=name: stds.__setitem__(name, float(i[0].std())))
    frames = torch.poisson(torch.full((3, 4, 2, 16, 16), 0.5))
    model(frames)
    assert len(stds) == 13  # 2 per block x (2 down + bottom + 2 fuse), 2 up, 1 head
    low = {k: round(v, 3) for k, v in stds.items() if v < 0.7}
    assert not low, f"LIF layers with shrunken input (std < 0.7): {low}"
