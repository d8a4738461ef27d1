"""Generate a seeded synthetic dataset in the raw layout (graded lesions, findings, regression)."""

import _libpath  # noqa: F401

from pathlib import Path

from medimbalance.data import synthetic
from medimbalance.data.io import save_array
from medimbalance.data.raw import write_raw
from medimbalance.logs import log_to_file

log = log_to_file(snakemake.log[0])
generator, spec = snakemake.wildcards.generator, dict(snakemake.params.spec)
folder = Path(snakemake.output.images).parent
split = None
if generator == "graded_lesions":
    spec = synthetic.GradedLesionsSpec(**spec)
    images, targets = synthetic.make_graded_lesions(spec)
    task, classes = "multiclass", spec.class_names
elif generator == "findings":
    spec = synthetic.FindingsSpec(**spec)
    images, targets = synthetic.make_findings(spec)
    task, classes = "multilabel", spec.class_names
else:
    spec = synthetic.StdRegressionSpec(**spec)
    images, targets, split = synthetic.make_std_regression(spec)
    task, classes = "regression", ["std"]
log.info("generated %d images %s for %s", len(images), images.shape[1:], spec)

save_array(folder / "images.npy", images)
meta = {
    "source": f"synthetic_{generator}",
    "task": task,
    "classes": classes,
    "channels": int(images.shape[1]),
    "spatial_shape": list(images.shape[2:]),
    "official_split": split is not None,
    "generator": snakemake.params.spec,
}
write_raw(folder, targets, meta, split=split)
