"""Family variants: same motors and limits, physics inside the documented ranges, the
robot's character kept, reproducible from the seed, different from each other."""
import numpy as np
import pytest

from face_actuation.family import KIND_PHYSICS, family_variant, sample_family
from face_actuation.profile import PHYSICS_RANGES, load_profile
from face_actuation.simulate import rollout
from face_actuation.twin import FaceTwin


@pytest.mark.parametrize('robot', ['micheal', 'hobbs', 'ameca'])
def test_variants_keep_the_motors_and_draw_physics_in_range(robot):
    profile = load_profile(robot, calibration_dir='/nonexistent')
    family = sample_family(profile, 3, seed=4)
    for variant in family:
        assert variant.motors == profile.motors and variant.digest() == profile.digest()
        assert variant.twin.effects == profile.twin.effects
        for name, (lo, hi) in PHYSICS_RANGES.items():
            assert lo <= getattr(variant.twin, name) <= hi, name
        assert variant.twin.natural_frequency_hz >= 2.0
        for kind, names in KIND_PHYSICS.items():      # other kinds' terms stay the robot's
            if kind != profile.kind:
                for name in names:
                    assert getattr(variant.twin, name) == getattr(profile.twin, name)
        run = rollout(FaceTwin(variant), variant.neutral + 0.3 * np.random.default_rng(0)
                      .uniform(-1, 1, (90, variant.num_motors)) * variant.neutral, 1 / 30)
        assert np.all(np.isfinite(run.observed))
    assert len({v.twin.seed for v in family}) == 3
    assert len({v.twin.skin_time_constant_s for v in family}) == 3
    again = family_variant(profile, 2, seed=4)
    assert again == family[2]                         # variant K does not depend on N
    assert family_variant(profile, 2, seed=5) != family[2]
