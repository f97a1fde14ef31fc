"""Human expression -> robot control values: the ExFace diffusion transformer, the X2CNet++
image pipeline and baselines. Implementation lands with the ExFace retargeting issue."""
