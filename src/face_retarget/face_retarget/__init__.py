"""Human expression -> robot control values: the ExFace diffusion transformer and its
baselines behind one streaming interface, the training pipeline, evaluation, and the
retarget node."""
