"""The generative synthesizers through the workflow: a class-conditional diffusion model and a
conditional DCGAN trained per profile, their images added to the runs, measured and shown; the
diffusion model's image–mask pairs for segmentation and images for multi-label findings."""

import numpy as np
import pytest
from conftest import REPO, run_study

from medimbalance.diffusion import TrainedDiffusion, load_synthesizer
from medimbalance.gan import TrainedGan

pytestmark = pytest.mark.workflow
STUDY = REPO / "tests" / "configs" / "synthesis.yaml"


@pytest.fixture(scope="module")
def synthesis_run(tmp_path_factory):
    return run_study(tmp_path_factory.mktemp("synthesis"), STUDY)


def test_each_generative_model_adds_its_images_up_to_its_ratio(synthesis_run):
    results = synthesis_run / "results/synthesis"
    kept = np.load(results / "data/lesions/longtail/train_indices.npy")
    counts = np.bincount(np.load(results / "data/lesions/train_targets.npy")[kept])
    assert counts.tolist() == [12, 8, 5, 3, 2]  # μ = 0.2 over 12 images per grade
    # ratio 1 (diffusion): every grade up to 12; ratio 0.5 (cdcgan_50): up to 6.
    for method, goal, kind in (("diffusion", 12, TrainedDiffusion), ("cdcgan_50", 6, TrainedGan)):
        run = results / f"runs/lesions/longtail/{method}/seed0"
        with np.load(run / "synthetic.npz") as synthetic:
            added = np.bincount(synthetic["targets"], minlength=5)
            assert added.tolist() == np.maximum(goal - counts, 0).tolist()
            assert synthetic["images"].shape == (added.sum(), 1, 16, 16)
            assert synthetic["images"].dtype == np.uint8
        model = load_synthesizer(results / f"gans/lesions/longtail/{method}/generator.pt")
        assert isinstance(model, kind)
        assert (run / "metrics.json").exists()
    table = (results / "tables/lesions_longtail_diffusion_synthesis.md").read_text()
    assert "Class-conditional diffusion model (DDPM, DDIM sampling) trained for 2 epochs" in table
    assert "train on synthetic (TSTR)" in table
    assert (results / "figures/lesions_longtail_diffusion_samples.png").stat().st_size > 0
    assert not list((results / "gans/lesions/longtail/diffusion").glob(".checkpoint*"))
    paper = (results / "tables/paper/synthesis.md").read_text()
    assert "diffusion" in paper and "cdcgan_50" in paper


def test_mask_conditioned_pairs_join_a_segmentation_run(synthesis_run):
    results = synthesis_run / "results/synthesis"
    kept = np.load(results / "data/tumours/natural/train_indices.npy")
    masks = np.load(results / "data/tumours/train_targets.npy")[kept]
    run = results / "runs/tumours/natural/dice_ce_pairs/seed0"
    with np.load(run / "synthetic.npz") as synthetic:
        # ratio 0.5: half as many new pairs as training images, 2-channel 16 x 16 float images.
        assert synthetic["targets"].shape == (round(0.5 * len(kept)), 16, 16)
        assert synthetic["images"].shape == (round(0.5 * len(kept)), 2, 16, 16)
        assert synthetic["images"].dtype == np.float32
        # Every new mask is one of the 8 symmetries of a training mask.
        symmetries = {
            np.rot90(m, k)[:, ::flip].tobytes() for m in masks for k in range(4) for flip in (1, -1)
        }
        assert all(m.tobytes() in symmetries for m in synthetic["targets"])
    model = load_synthesizer(results / "gans/tumours/natural/dice_ce_pairs/generator.pt")
    assert isinstance(model, TrainedDiffusion) and model.condition == "mask"
    counts = (run / "class_counts.tsv").read_text()
    assert "synthetic" in counts.splitlines()[0]
    assert (run / "metrics.json").exists()
    table = (results / "tables/tumours_natural_dice_ce_pairs_synthesis.md").read_text()
    assert "Mask-conditioned diffusion model (DDPM, DDIM sampling) trained for 2 epochs" in table
    assert "trained on generated pairs (TSTR)" in table
    assert (results / "figures/tumours_natural_dice_ce_pairs_samples.png").stat().st_size > 0
    results_table = (results / "tables/tumours_natural.md").read_text()
    assert "dice_ce_pairs" in results_table


def test_findings_conditioned_images_join_a_multilabel_run(synthesis_run):
    results = synthesis_run / "results/synthesis"
    kept = np.load(results / "data/findings/natural/train_indices.npy")
    findings = np.load(results / "data/findings/train_targets.npy")[kept]
    have = findings.sum(0)
    goal = int(np.ceil(0.5 * have.max()))
    run = results / "runs/findings/natural/bce_diffusion/seed0"
    with np.load(run / "synthetic.npz") as synthetic:
        new = synthetic["targets"]
        assert new.shape[1] == 14 and new.dtype == np.uint8 and len(new) > 0
        assert synthetic["images"].shape == (len(new), 1, 16, 16)
        # Every new vector is a training image's; every finding with training images reaches
        # the goal, one without stays absent.
        assert {row.tobytes() for row in new} <= {row.tobytes() for row in findings}
        total = have + new.sum(0)
        assert (total[have > 0] >= goal).all() and (total[have == 0] == 0).all()
    model = load_synthesizer(results / "gans/findings/natural/bce_diffusion/generator.pt")
    assert isinstance(model, TrainedDiffusion) and model.condition == "findings"
    counts = (run / "class_counts.tsv").read_text().splitlines()
    assert counts[0].split("\t")[-1] == "synthetic" and len(counts) == 15
    assert (run / "metrics.json").exists()
    table = (results / "tables/findings_natural_bce_diffusion_synthesis.md").read_text()
    assert "Findings-conditioned diffusion model (DDPM, DDIM sampling) trained for 2" in table
    assert "| hernia |" in table and "| all (macro AUROC) |" in table
    assert (results / "figures/findings_natural_bce_diffusion_samples.png").stat().st_size > 0
