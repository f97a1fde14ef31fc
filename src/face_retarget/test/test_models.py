"""ExFace and the baselines on tiny configs: they really train (loss falls), really infer
(right shape and range), stream and batch agree, and checkpoints round-trip safely."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from face_actuation.profile import load_profile
from face_actuation.twin import FaceTwin
from face_common.arkit import RETARGET_INPUT
from face_retarget.baselines import LinearRetarget
from face_retarget.data import exploration_noise, interpolation_commands, record, windows
from face_retarget.exface import ExFaceConfig, ExFaceDiffusion, noise_schedule
from face_retarget.models import (
    MLPRegressor,
    Normaliser,
    TorchStream,
    TransformerRegressor,
    build_model,
    network_config,
)
from face_retarget.training import (
    CheckpointError,
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    stream_from_checkpoint,
    train,
)

WINDOW = 16


@pytest.fixture(scope='module')
def tiny_data():
    profile = load_profile('hobbs', '/nonexistent')
    twin = FaceTwin(profile)
    rng = np.random.default_rng(0)
    episodes = [record(twin, interpolation_commands(twin, 400, rng, 30.0), 30.0, 'i')
                for _ in range(3)]
    observed, commands = windows(episodes, WINDOW, 4, delay=1)
    return profile, observed, commands, Normaliser.fit(observed), episodes


def tiny_exface(motors):
    return ExFaceDiffusion(ExFaceConfig(motors=motors, window=WINDOW, d_model=32, layers=2,
                                        heads=2, diffusion_steps=50, inference_steps=2))


@pytest.mark.parametrize('kind', ['cosine', 'linear'])
def test_noise_schedules(kind):
    ab = noise_schedule(100, kind)
    assert ab.shape == (100,) and (ab > 0).all() and (ab <= 1).all()
    assert (ab[1:] < ab[:-1]).all() and ab[-1] < 0.05
    with pytest.raises(ValueError):
        noise_schedule(10, 'quadratic')


def losses_fall(history):
    first = np.mean([loss for _, loss in history[:2]])
    last = np.mean([loss for _, loss in history[-2:]])
    return last < 0.7 * first, (first, last)


@pytest.mark.parametrize('kind', ['exface', 'mlp', 'transformer'])
def test_tiny_models_really_train(tiny_data, kind):
    profile, observed, commands, normaliser, _ = tiny_data
    m = profile.num_motors
    model = {'exface': lambda: tiny_exface(m), 'mlp': lambda: MLPRegressor(55, m, 64),
             'transformer': lambda: TransformerRegressor(55, m, WINDOW, 32, 2, 2)}[kind]()
    history = train(model, observed, commands, normaliser,
                       TrainConfig(steps=200, batch=16, lr=2e-3, warmup=10), progress=False)
    ok, figures = losses_fall(history)
    assert ok, f'{kind} loss did not fall: {figures}'


def test_sampler_shape_range_and_step_count(tiny_data):
    profile, *_ = tiny_data
    m = profile.num_motors
    model = tiny_exface(m).eval()
    calls = []
    model.net.register_forward_hook(lambda *a: calls.append(1))
    cond, history = torch.randn(3, WINDOW, 55), torch.rand(3, WINDOW, m) * 2 - 1
    out = model.fill_last(cond, history, history[:, -2], torch.randn(m), steps=2)
    assert out.shape == (3, m) and out.min() >= -1 and out.max() <= 1
    assert len(calls) == 2
    calls.clear()
    model.fill_last(cond, history, history[:, -2], torch.randn(m), steps=1)
    assert len(calls) == 1


def randomised_exface(motors, seed=0):
    """A tiny ExFace whose adaLN-Zero gates are not zero (fresh ones make every block the
    identity, which would hide a wrong last-frame path)."""
    model = tiny_exface(motors).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return model


def test_last_frame_path_equals_the_full_window():
    """The last block computes the last frame's row alone: the same answer as the whole
    window's last row, within float rounding."""
    model = randomised_exface(5)
    generator = torch.Generator().manual_seed(1)
    noisy, known = (torch.randn(3, WINDOW, 5, generator=generator) for _ in range(2))
    cond = torch.randn(3, WINDOW, 55, generator=generator)
    mask = torch.ones(3, WINDOW, 1)
    mask[:, -1] = 0
    t = torch.tensor([3, 20, 41])
    with torch.inference_mode():
        full = model.net(noisy, cond, known, mask, t)
        last = model.net(noisy, cond, known, mask, t, last_only=True)
    assert last.shape == (3, 1, 5)
    assert full[:, -1].abs().max() > 0.1                  # a network that really computes
    torch.testing.assert_close(last[:, -1], full[:, -1], atol=1e-5, rtol=1e-5)


def test_frozen_sampler_equals_eager_for_every_batch_shape():
    """freeze_for_inference traces one graph per input shape; each answers what the eager
    sampler answers, and later weight changes are not its business (frozen means fixed)."""
    eager, frozen = randomised_exface(5), randomised_exface(5)
    frozen.freeze_for_inference()
    generator = torch.Generator().manual_seed(2)
    for batch in (1, 3, 1):
        cond = torch.randn(batch, WINDOW, 55, generator=generator)
        history = torch.rand(batch, WINDOW, 5, generator=generator) * 2 - 1
        noise = torch.randn(5, generator=generator)
        expected = eager.fill_last(cond, history, history[:, -2], noise, steps=2)
        got = frozen.fill_last(cond, history, history[:, -2], noise, steps=2)
        assert expected.abs().max() > 0.05
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert len(frozen._frozen_denoiser.graphs) == 2


@pytest.mark.parametrize('kind', ['exface', 'transformer'])
def test_shipped_checkpoint_streams_the_same_frozen(kind):
    """The shipped checkpoint loads unchanged; its frozen stream (what the node runs) sends
    the commands the eager network sends, frame after frame of a real take."""
    from face_capture.bundled import bundled_take_path
    from face_capture.takes import read_take
    from face_retarget.recipe import calibrated_take
    from face_retarget.training import default_checkpoint_dir
    profile = load_profile('hobbs', '/nonexistent')
    path = default_checkpoint_dir() / 'hobbs' / f'{kind}.pt'
    frozen = stream_from_checkpoint(path, profile)
    model, normaliser, _ = load_checkpoint(path, profile)
    eager = TorchStream(model, normaliser)
    frames = calibrated_take(read_take(bundled_take_path()))[:40]
    for stream in (frozen, eager):
        stream.reset(profile.neutral)
    for frame in frames:
        np.testing.assert_allclose(frozen.step(frame), eager.step(frame), atol=2e-6)


@pytest.mark.parametrize('kind', ['exface', 'mlp', 'transformer'])
def test_streaming_and_batch_agree_in_deterministic_mode(tiny_data, kind):
    """Every network behind the one streaming interface: step() one frame at a time gives
    what predict() gives for a batch of sequences."""
    profile, observed, commands, normaliser, episodes = tiny_data
    model = build_model(kind, network_config(kind, profile.num_motors, WINDOW, 32, 1, 2), 3)
    train(model, observed, commands, normaliser, TrainConfig(steps=30, batch=8, warmup=5),
          progress=False)
    a, b = episodes[0].observed[:40], episodes[1].observed[:40]
    one = TorchStream(model, normaliser, deterministic=True)
    one.reset(profile.neutral)
    streamed = np.stack([one.step(frame) for frame in a])
    both = TorchStream(model, normaliser, deterministic=True)
    both.reset(profile.neutral)
    batched = both.predict(np.stack([a, b]))
    np.testing.assert_allclose(batched[0], streamed, atol=1e-5)
    assert streamed.shape == (40, profile.num_motors)
    assert streamed.min() >= 0 and streamed.max() <= 1
    assert not np.allclose(batched[0], batched[1])


@pytest.mark.parametrize('kind', ['exface', 'mlp', 'transformer'])
def test_the_same_seed_trains_bit_identical_weights(tiny_data, kind):
    profile, observed, commands, normaliser, _ = tiny_data
    config = network_config(kind, profile.num_motors, WINDOW, 32, 1, 2, condition_noise=0.05)
    trained = []
    for before in (100, 200):
        torch.manual_seed(before)              # whatever drew random numbers before: no matter
        torch.rand(before)
        model = build_model(kind, config, seed=11)
        history = train(model, observed, commands, normaliser,
                           TrainConfig(steps=15, batch=8, warmup=3, seed=11), progress=False)
        trained.append((model.state_dict(), history))
    (first, first_loss), (second, second_loss) = trained
    assert first.keys() == second.keys() and first_loss == second_loss
    assert all(torch.equal(first[k], second[k]) for k in first)
    fresh = [build_model(kind, config, seed).state_dict() for seed in (11, 12)]
    assert not all(torch.equal(fresh[0][k], fresh[1][k]) for k in fresh[0])


def test_building_and_training_leave_the_global_random_state_alone(tiny_data):
    """Every draw is keyed: the factory and the training loop use their own seeds, so code
    that draws from torch's global state afterwards gets what it would have without them."""
    profile, observed, commands, normaliser, _ = tiny_data
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    model = build_model('exface', network_config('exface', profile.num_motors, WINDOW, 32, 1,
                                                  2), seed=11)
    train(model, observed, commands, normaliser, TrainConfig(steps=3, batch=4, warmup=1,
                                                             seed=11), progress=False)
    assert torch.equal(torch.rand(4), expected)


def test_checkpoint_round_trip_and_wrong_robot(tiny_data, tmp_path):
    profile, observed, commands, normaliser, episodes = tiny_data
    model = tiny_exface(profile.num_motors)
    config = TrainConfig(steps=20, batch=8, warmup=5)
    history = train(model, observed, commands, normaliser, config, progress=False)
    path = save_checkpoint(tmp_path / 'exface.pt', model, normaliser, profile, config, history,
                           {'steps_done': 20})
    _, loaded_norm, payload = load_checkpoint(path, profile)
    assert payload['robot'] == 'hobbs' and payload['config']['window'] == WINDOW
    assert payload['history'] == history and payload['info'] == {'steps_done': 20}
    np.testing.assert_array_equal(loaded_norm.input_mean, normaliser.input_mean)
    frames = episodes[2].observed[:10]
    original = TorchStream(model, normaliser)
    original.reset(profile.neutral)
    restored = stream_from_checkpoint(path, profile)
    restored.reset(profile.neutral)
    np.testing.assert_allclose([original.step(f) for f in frames],
                               [restored.step(f) for f in frames], atol=1e-6)
    with pytest.raises(CheckpointError, match='trained for robot "hobbs"'):
        load_checkpoint(path, load_profile('micheal', '/nonexistent'))
    (tmp_path / 'broken.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / 'broken.pt')


def test_linear_baseline_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, (500, 61))
    truth = rng.normal(0, 0.02, (55, 4))
    motors = frames[:, RETARGET_INPUT] @ truth + 0.5 - (0.5 * truth.sum(0))
    assert motors.min() > 0 and motors.max() < 1
    fitted = LinearRetarget.fit(frames, motors, ridge=1e-8)
    np.testing.assert_allclose(fitted.predict(frames), motors, atol=1e-4)


def test_exploration_noise_is_smooth_zero_mean_with_the_asked_spread():
    rate, tau, sigma = 30.0, 0.3, 0.05
    noise = exploration_noise(20_000, 4, sigma, np.random.default_rng(0), rate, tau)
    assert noise.shape == (20_000, 4)
    assert np.all(np.abs(noise.mean(axis=0)) < 0.2 * sigma)
    assert np.allclose(noise.std(axis=0), sigma, rtol=0.15)
    lag_one = np.mean([np.corrcoef(noise[1:, m], noise[:-1, m])[0, 1] for m in range(4)])
    assert lag_one == pytest.approx(np.exp(-1.0 / (rate * tau)), abs=0.02)   # smooth, not white
    again = exploration_noise(20_000, 4, sigma, np.random.default_rng(0), rate, tau)
    assert np.array_equal(noise, again)                                        # seeded


def test_condition_noise_is_applied_in_training_only(tiny_data):
    profile, observed, commands, normaliser, _ = tiny_data
    m = profile.num_motors
    clean = tiny_exface(m)
    noisy = ExFaceDiffusion(ExFaceConfig(**{**clean.config.to_dict(), 'condition_noise': 0.3}))
    noisy.load_state_dict(clean.state_dict())
    cond = torch.from_numpy(normaliser.inputs(observed[:8]))
    target = torch.from_numpy(Normaliser.motors(commands[:8]))

    def loss(model):
        return model.loss(cond, target, torch.Generator().manual_seed(0)).item()
    assert loss(noisy) != pytest.approx(loss(clean), rel=1e-6)
    history = train(noisy, observed, commands, normaliser,
                       TrainConfig(steps=200, batch=16, lr=2e-3, warmup=10), progress=False)
    ok, figures = losses_fall(history)
    assert ok, f'loss did not fall with condition noise: {figures}'
    clean.load_state_dict(noisy.state_dict())          # same weights: inference identical
    streams = [TorchStream(model, normaliser) for model in (clean, noisy)]
    outputs = []
    for stream in streams:
        stream.reset(profile.neutral)
        outputs.append(stream.predict(observed[:2, :20]))
    assert np.array_equal(outputs[0], outputs[1])


class _ShellGadget:
    """What a malicious .pt holds: unpickling it calls os.system (it writes a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_a_pickle_gadget_checkpoint_is_refused_before_it_runs(tiny_data, tmp_path):
    profile = tiny_data[0]
    marker = tmp_path / 'gadget-ran'
    real = save_checkpoint(tmp_path / 'real.pt', tiny_exface(profile.num_motors),
                           tiny_data[3], profile, TrainConfig(), [])
    payload = torch.load(real, weights_only=True)
    payload['info'] = {'note': _ShellGadget(marker)}          # everything else is genuine
    torch.save(payload, tmp_path / 'evil.pt')
    with pytest.raises(CheckpointError, match=r'refused checkpoint .*GLOBAL posix\.system'):
        load_checkpoint(tmp_path / 'evil.pt', profile)
    assert not marker.exists()


def test_a_checkpoint_the_safe_loader_would_refuse_is_never_written(tiny_data, tmp_path):
    """Checked before it is written (atomically): no checkpoint, no temporary file."""
    profile = tiny_data[0]
    with pytest.raises(CheckpointError, match='refused checkpoint'):
        save_checkpoint(tmp_path / 'exface.pt', tiny_exface(profile.num_motors), tiny_data[3],
                        profile, TrainConfig(), [], {'where': Path('/')})
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_that_is_not_ours_gives_one_error(tiny_data, tmp_path):
    torch.save({'weights': torch.zeros(3)}, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='not a face_retarget checkpoint'):
        load_checkpoint(tmp_path / 'other.pt')
    profile = tiny_data[0]
    path = save_checkpoint(tmp_path / 'mlp.pt', tiny_exface(profile.num_motors), tiny_data[3],
                           profile, TrainConfig(), [])
    payload = torch.load(path, weights_only=True)
    payload['kind'] = 'mlp'                                   # weights of another model
    torch.save(payload, tmp_path / 'mixed.pt')
    with pytest.raises(CheckpointError, match='do not fit'):
        load_checkpoint(tmp_path / 'mixed.pt', profile)
