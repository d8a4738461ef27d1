"""Patch training and sliding-window inference (medimbalance.patches)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.networks.nets import UNet

from medimbalance.patches import CaseSet, PatchSet, PatchSpec, case_locations, window
from medimbalance.tasks import patch_errors

DEVICE = torch.device("cpu")


def padded_cases(rng, sizes, full, foreground=0.02):
    """Cases of ``sizes`` padded to ``full``: float images and masks with a few labels."""
    images = np.zeros((len(sizes), 1, *full), np.float32)
    masks = np.zeros((len(sizes), *full), np.uint8)
    for i, size in enumerate(sizes):
        corner = tuple(slice(0, n) for n in size)
        images[(i, 0, *corner)] = rng.normal(size=size) + 1  # never 0 inside the case
        masks[(i, *corner)] = (rng.random(size) < foreground) * rng.integers(1, 3, size)
    return images, masks


def test_foreground_share_over_many_draws(rng):
    images = rng.normal(size=(3, 1, 32, 32, 32)).astype(np.float32)
    masks = np.zeros((3, 32, 32, 32), np.uint8)
    for i, (a, b, c) in enumerate([(5, 20, 14), (25, 3, 9), (14, 14, 28)]):
        masks[i, a : a + 2, b : b + 2, c : c + 2] = 1 + i % 2  # one small lesion per case
    for share in (0.0, 0.33, 0.8):
        spec = PatchSpec(size=(4, 4, 4), foreground=share, per_epoch=900)
        patches = PatchSet(images, masks, np.arange(3), None, spec, 3, DEVICE, seed=1)
        held = patches.targets(torch.arange(900)).flatten(1).gt(0).any(1).float().mean().item()
        # A foreground-centred patch always holds the lesion, a background-centred one only
        # by chance (about 5³ of 32³ centres: < 0.5 %).
        assert held == pytest.approx(share, abs=0.04), share


def test_class_ratios_choose_the_class_a_patch_is_centred_on(rng):
    images = rng.normal(size=(4, 1, 40, 40)).astype(np.float32)
    masks = np.zeros((4, 40, 40), np.uint8)
    for i in range(4):
        masks[i, 8 + i, 10] = 1  # one voxel of each foreground class, far apart
        masks[i, 30, 28 - i] = 2
    spec = PatchSpec(size=(4, 4), class_ratios=(0.0, 1.0, 3.0), per_epoch=800)
    patches = PatchSet(images, masks, np.arange(4), None, spec, 3, DEVICE, seed=0)
    y = patches.targets(torch.arange(800)).flatten(1)
    held = [(y == c).any(1).float().mean().item() for c in (1, 2)]
    assert held == pytest.approx([0.25, 0.75], abs=0.05)  # never both: they are far apart


def test_patches_come_from_the_case_and_padding_is_never_read(rng):
    sizes = [(6, 20), (20, 6), (20, 20)]
    images, masks = padded_cases(rng, sizes, (20, 20), foreground=0.1)
    spec = PatchSpec(size=(10, 10), foreground=0.5, per_epoch=90)
    patches = PatchSet(images, masks, np.arange(3), sizes, spec, 3, DEVICE, seed=2)
    x, y = patches.batch(torch.arange(90)), patches.targets(torch.arange(90))
    assert x.shape == (90, 1, 10, 10) and y.shape == (90, 10, 10) and y.dtype == torch.int64
    for k, (row, slices, pads) in enumerate(patches.draws):
        inside = tuple(slice(0, s.stop - s.start) for s in slices)
        np.testing.assert_array_equal(x[k, 0][inside].numpy(), images[row, 0][slices])
        np.testing.assert_array_equal(y[k][inside].numpy(), masks[row][slices])
        assert all(s.stop <= n for s, n in zip(slices, sizes[row], strict=True))
        # A case of 6 voxels along an axis gives 6 voxels of it and 4 of zero padding.
        assert [a for _, a in pads] == [10 - min(10, n) for n in sizes[row]]
        assert (x[k, 0].numpy() != 0).sum() == np.prod([s.stop - s.start for s in slices])


def test_epochs_are_reseeded_so_a_resumed_run_draws_the_same_patches(rng):
    images, masks = padded_cases(rng, [(12, 12)] * 5, (12, 12), foreground=0.1)
    spec = PatchSpec(size=(4, 4), per_epoch=7)
    a = PatchSet(images, masks, np.arange(5), None, spec, 3, DEVICE, seed=3)
    b = PatchSet(images, masks, np.arange(5), None, spec, 3, DEVICE, seed=3)
    a.reseed(3, 1), a.reseed(3, 2)
    b.reseed(3, 2)  # a resumed run: straight to epoch 2
    assert [(r, s) for r, s, _ in a.draws] == [(r, s) for r, s, _ in b.draws]
    first = [(r, s) for r, s, _ in (b.reseed(3, 1) or b.draws)]
    assert first != [(r, s) for r, s, _ in a.draws]
    # 7 patches over 5 cases: every case once, then two again.
    assert sorted(np.bincount([r for r, _, _ in a.draws], minlength=5)) == [1, 1, 1, 2, 2]


def test_locations_are_capped_per_class(rng):
    mask = rng.integers(0, 3, (30, 30))
    where = case_locations(mask, 3, 50, np.random.default_rng(0))
    assert [len(w) for w in where] == [50, 50, 50]
    assert all((mask.reshape(-1)[w] == c).all() for c, w in enumerate(where))
    assert len(case_locations(mask, 4, 10**6, np.random.default_rng(0))[3]) == 0


def test_window_clips_to_the_case():
    assert window([0, 9], [4, 4], [10, 10]) == ((slice(0, 4), slice(6, 10)), [(0, 0), (0, 0)])
    assert window([1, 5], [4, 8], [3, 10]) == ((slice(0, 3), slice(1, 9)), [(0, 1), (0, 0)])


def test_sliding_windows_equal_whole_image_inference_when_the_window_covers_it(rng):
    torch.manual_seed(0)
    net = UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0).eval()
    images, masks = padded_cases(rng, [(16, 16, 8), (16, 12, 8)], (16, 16, 8))
    cases = CaseSet(images, masks, [(16, 16, 8), (16, 12, 8)], PatchSpec((16, 16, 8)), DEVICE)
    with torch.no_grad():
        whole = net(torch.from_numpy(images[:1]))
        np.testing.assert_allclose(cases.logits(net, 0).numpy(), whole.numpy(), atol=1e-6)
        # Smaller windows that overlap: the same shape, each voxel's outputs a blend.
        small = CaseSet(images, masks, None, PatchSpec((8, 8, 8), overlap=0.5), DEVICE)
        assert small.logits(net, 0).shape == whole.shape
        labels = cases.predicted_labels(net)
        second = cases.logits(net, 1)  # the second case at its own size, 16 × 12 × 8
    assert labels.shape == (2, 16, 16, 8) and labels.dtype == np.uint8
    assert (labels[1, :, 12:] == 0).all()  # background in the padding
    np.testing.assert_array_equal(labels[1, :, :12], second[0].argmax(0).numpy())
    np.testing.assert_array_equal(labels[0], whole[0].argmax(0).numpy())
    assert cases.case(1)[1].shape == (1, 16, 12, 8)


def test_patch_settings_are_checked():
    assert patch_errors({"size": [8, 8, 8]}, 3, 4) == []
    errors = patch_errors(
        {"size": [8, 8], "foreground": 1.5, "overlap": 1, "blend": "max", "sizes": 1}, 3, 4
    )
    assert any("unknown key(s) ['sizes']" in e for e in errors)
    assert any("patch.size must list 3 positive voxel counts" in e for e in errors)
    assert any("patch.foreground must lie in [0, 1]" in e for e in errors)
    assert any("patch.overlap must lie in [0, 1)" in e for e in errors)
    assert any("patch.blend must be one of ['gaussian', 'constant']" in e for e in errors)
    ratios = patch_errors({"size": [4, 4], "class_ratios": [1, 2]}, 2, 3)
    assert ratios == [
        "patch.class_ratios must give 3 non-negative weights (background first), "
        "not all 0, got [1, 2]"
    ]
    assert patch_errors({"size": [4, 4], "foreground": 0.5, "class_ratios": [1, 1, 1]}, 2, 3)
    with pytest.raises(ValueError, match=r"patch\.size"):
        PatchSpec.from_dict({"size": [0, 4]}, 2, 3)


def mapped_kib(path) -> int:
    """Resident KiB of this process's mappings of ``path`` (``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if not line.split(":")[0].isalpha() or "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's smaps")
def test_reading_patches_releases_the_mapped_pages(tmp_path, rng):
    from medimbalance.data.io import load_array, save_array

    images, masks = padded_cases(rng, [(64, 64, 64)] * 2, (64, 64, 64), foreground=0.01)
    save_array(tmp_path / "i.npy", images), save_array(tmp_path / "m.npy", masks)
    mapped = load_array(tmp_path / "i.npy", mmap=True)
    spec = PatchSpec(size=(48, 48, 48), per_epoch=4)
    patches = PatchSet(
        mapped, load_array(tmp_path / "m.npy", mmap=True), np.arange(2), None, spec, 3, DEVICE
    )
    np.asarray(mapped).sum()  # touch every page: 2 MiB of cases resident in this mapping
    assert mapped_kib(tmp_path / "i.npy") > 1500
    x = patches.batch(torch.arange(4))
    row, slices, _ = patches.draws[0]
    np.testing.assert_array_equal(x[0, 0].numpy(), images[row, 0][slices])
    assert mapped_kib(tmp_path / "i.npy") < 100  # read, then released


def test_flip_tta_averages_the_softmax_over_every_flip(rng):
    from medimbalance.patches import FlipTTA

    torch.manual_seed(1)
    net = torch.nn.Conv2d(1, 3, 3, padding=1)  # not flip-invariant: its kernel is not symmetric
    x = torch.from_numpy(rng.normal(size=(2, 1, 6, 5)).astype(np.float32))
    with torch.no_grad():
        flips = [[], [2], [3], [2, 3]]
        by_hand = (
            sum(
                torch.softmax(torch.flip(net(torch.flip(x, d)), d) if d else net(x), 1)
                for d in flips
            )
            / 4
        )
        out = FlipTTA(net)(x)
    np.testing.assert_allclose(out.exp().numpy(), by_hand.numpy(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out.exp(), torch.softmax(net(x), 1), atol=1e-3)
    volume = torch.zeros(1, 1, 4, 4, 4)
    conv3d = torch.nn.Conv3d(1, 2, 3, padding=1)
    assert FlipTTA(conv3d)(volume).shape == (1, 2, 4, 4, 4)  # 8 flips in 3D
