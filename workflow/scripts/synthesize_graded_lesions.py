"""Generate the seeded synthetic graded-lesion dataset (raw source, under resources/)."""

import _libpath  # noqa: F401

from medimbalance.data.io import save_array, write_json
from medimbalance.data.synthetic import GradedLesionsSpec, make_graded_lesions
from medimbalance.logs import log_to_file

log = log_to_file(snakemake.log[0])
spec = GradedLesionsSpec(**snakemake.params.spec)
images, labels = make_graded_lesions(spec)
log.info("generated %d images of shape %s with spec %s", len(images), images.shape[1:], spec)

save_array(snakemake.output.images, images)
save_array(snakemake.output.labels, labels)
write_json(
    snakemake.output.meta,
    {
        "source": "synthetic_graded_lesions",
        "task": "multiclass",
        "classes": spec.class_names,
        "channels": int(images.shape[1]),
        "spatial_shape": list(images.shape[2:]),
        "dtype": str(images.dtype),
        "n": len(images),
        "generator": snakemake.params.spec,
    },
)
